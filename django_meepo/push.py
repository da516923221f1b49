"""Producing jobs: INSERT now, in the caller's transaction; dispatch the ids after it commits.

At the commit the ids go to the process's outbox (``outbox.py``), which dispatches them from a background
thread, coalescing across transactions; a rollback dispatches nothing. A dispatch that fails never reaches the
caller: the row *is* the job, a warning is logged, and the sweeper dispatches it later. So a caller never
retries a push that succeeded. Times come from the database's clock, so a producer whose clock runs ahead
does not delay its jobs.
"""

from __future__ import annotations

import functools
import json as jsonlib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from . import inserts, metrics, outbox, tracing, unique
from .clock import db_now
from .conf import get_settings
from .exceptions import ConfigurationError, InvalidPayload
from .inserts import NewJob
from .registry import get_task
from .states import Dispatchable
from .tables import for_task

if TYPE_CHECKING:
    from .models import AbstractJob

log = logging.getLogger(__name__)

_MISSING: Any = object()
PRIORITY_MIN, PRIORITY_MAX = -100, 100
IDEMPOTENCY_KEY_MAX = 200
CONCURRENCY_KEY_MAX = 200
# Rows and bytes per multi-row INSERT: far under MySQL's default max_allowed_packet (16 MiB on MariaDB 10.11,
# 64 MiB on MySQL 8), leaving room for escaping.
BULK_ROWS = 1000
BULK_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Schedule:
    due_at: datetime
    immediate: bool


def _alias(using: str | None) -> str:
    alias = using or get_settings().database
    if alias not in connections:
        raise ConfigurationError(f"database alias {alias!r} is not in DATABASES (MEEPO['DATABASE'] or using=)")
    return alias


@functools.lru_cache(maxsize=8)
def _encoder_class(path: str | None) -> type[jsonlib.JSONEncoder] | None:
    """``MEEPO["JSON_ENCODER"]`` imported once per path (check meepo.E001 says when it does not import)."""
    if path is None:
        return None
    try:
        encoder = import_string(path)
    except ImportError as exc:
        raise ConfigurationError(f"MEEPO['JSON_ENCODER'] {path!r} does not import ({exc})") from exc
    if not (isinstance(encoder, type) and issubclass(encoder, jsonlib.JSONEncoder)):
        raise ConfigurationError(f"MEEPO['JSON_ENCODER'] {path!r} is not a json.JSONEncoder subclass")
    return encoder


def encode_payload(payload: Any = None, json: Any = _MISSING) -> bytes:
    """The payload as bytes: ``payload`` (bytes-like) or ``json`` (any JSON-serialisable value), not both."""
    if json is not _MISSING:
        if payload is not None:
            raise InvalidPayload("give either payload= (bytes) or json= (a JSON value), not both")
        encoder = get_settings().json_encoder
        try:
            return jsonlib.dumps(json, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                                 cls=_encoder_class(encoder)).encode()
        except (TypeError, ValueError) as exc:
            hint = "" if encoder else " (MEEPO['JSON_ENCODER'] can name an encoder that handles it)"
            raise InvalidPayload(f"json= value is not JSON-serialisable: {exc}{hint}") from exc
    if payload is None:
        return b""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    hint = " (encode it, e.g. text.encode(), or pass json=)" if isinstance(payload, str) else " (or pass json=)"
    raise InvalidPayload(f"payload must be bytes, bytearray or memoryview, not {type(payload).__name__}{hint}")


def check_size(data: bytes, limit: int | None = None) -> bytes:
    limit = limit if limit is not None else get_settings().max_payload_bytes
    if len(data) > limit:
        raise InvalidPayload(f"payload is {len(data)} bytes, over the limit of {limit} bytes "
                             f"(MEEPO['MAX_PAYLOAD_BYTES']); store large data elsewhere and push a reference")
    return data


def schedule(now: datetime, delay: Any = None, due_at: Any = None) -> Schedule:
    """When a job pushed at ``now`` is due, and whether it is dispatched at the commit (``immediate``).

    Rows store times to the microsecond, and a delayed job (not immediate) is found by the sweeper's due scan only
    if its ``due_at`` is after its ``updated_at`` (= ``now``). So a ``delay`` that rounds to less than 1 µs
    (e.g. ``1e-7``) is no delay at all: ``due_at`` is ``now`` and the job is dispatched at the commit, like
    ``delay=0``. Rounding it up to the next microsecond instead would leave the job to the next sweeper tick,
    later than anything a sub-microsecond delay asked for.
    """
    if delay is not None and due_at is not None:
        raise ValueError("give either delay= or due_at=, not both")
    if due_at is not None:
        if not isinstance(due_at, datetime):
            raise ValueError(f"due_at must be a datetime, not {type(due_at).__name__}")
        if settings.USE_TZ and timezone.is_naive(due_at):
            raise ValueError("due_at must be timezone-aware when USE_TZ is True")
        return Schedule(due_at, due_at <= now)
    if delay is None:
        return Schedule(now, True)
    if isinstance(delay, timedelta):
        seconds = delay.total_seconds()
    elif isinstance(delay, int | float) and not isinstance(delay, bool) and math.isfinite(delay):
        seconds = float(delay)
    else:
        raise ValueError(f"delay must be a number of seconds or a timedelta, not {delay!r}")
    if seconds < 0:
        raise ValueError(f"delay must not be negative, not {seconds:g} s")
    offset = timedelta(seconds=seconds)  # rounded to the microsecond, as the row stores it
    return Schedule(now + offset, offset == timedelta(0))


def check_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ValueError(f"priority must be an integer from {PRIORITY_MIN} to {PRIORITY_MAX}, not {priority!r}")
    return priority


def check_idempotency_key(key: Any) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise ValueError(f"idempotency_key must be a non-empty string of at most {IDEMPOTENCY_KEY_MAX} "
                         f"characters, not {key!r}")
    return key


def check_concurrency_key(task: str, key: Any) -> str | None:
    """``concurrency_key`` as given to a push of ``task``: None, or a non-empty string of at most 200 characters
    for a task with a per-key limit (``KEY_CONCURRENCY`` or ``KEY_RATE``); anything else raises ValueError and
    nothing is written."""
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > CONCURRENCY_KEY_MAX:
        raise ValueError(f"concurrency_key must be a non-empty string of at most {CONCURRENCY_KEY_MAX} "
                         f"characters, not {key!r}")
    if not get_task(task).options.keyed:
        raise ValueError(f"concurrency_key={key!r} was given for task {task!r}, which has no per-key limit: set "
                         f"its key_concurrency= or key_rate= (or push without a concurrency_key)")
    return key


def push(task: str, payload: Any = None, *, json: Any = _MISSING, delay: Any = None, due_at: Any = None,
         priority: int = 0, idempotency_key: str | None = None, unique_key: str | None = None,
         unique_for: Any = None, unique_while: str | None = None, using: str | None = None,
         concurrency_key: str | None = None) -> AbstractJob:
    """INSERT a job now (in the caller's transaction) and return it; its id is dispatched after the commit.

    With ``idempotency_key``: at most one job per task and key, ever. With ``unique_key`` (``unique.py``): no
    second job while one holding the key counts (``unique_while``, ``unique_for``). Either way the existing job
    is returned and nothing is written or dispatched. With ``concurrency_key``: the job counts against its task's
    per-key limits (``KEY_CONCURRENCY``, ``KEY_RATE``; limits.py).
    """
    get_task(task)
    data = check_size(encode_payload(payload, json))
    priority = check_priority(priority)
    flow_key = check_concurrency_key(task, concurrency_key)
    key = check_idempotency_key(idempotency_key)
    uniq = unique.check_unique(unique_key, unique_for, unique_while)
    if key is not None and uniq is not None:
        raise ValueError("give either idempotency_key= (once per task, ever) or unique_key= (one at a time), "
                         "not both")
    alias = _alias(using)
    now = db_now(alias)
    when = schedule(now, delay, due_at)
    new = NewJob(task, data, priority, key, now, when.due_at, uniq.key if uniq else None,
                 concurrency_key=flow_key)
    if tracing.ENABLED:
        with tracing.producer(task) as span:
            job = _push_one(replace(new, trace_context=span.context), alias, when, uniq)
            span.pushed([job.id], job._meepo_created)  # type: ignore[attr-defined]
            return job
    return _push_one(new, alias, when, uniq)


def _push_one(new: NewJob, alias: str, when: Schedule, uniq: unique.Unique | None) -> AbstractJob:
    """INSERT ``new`` (once, for a key) and, at the commit, dispatch it and count it; ``_meepo_created`` says
    whether it was inserted (False: the job already holding the key, returned without a write)."""
    if new.idempotency_key is None and uniq is None:
        job = inserts.as_model(alias, inserts.insert(alias, [new])[0], new)
    else:
        job = _insert_once(new, alias) if uniq is None else unique.push_unique(new, uniq, alias, new.created_at)
        if not job._meepo_created:  # type: ignore[attr-defined]
            return job
    job._meepo_created = True  # type: ignore[attr-defined]
    if metrics.ENABLED:
        metrics.pushed(alias, new.task, 1)
    if when.immediate:
        outbox.after_transaction([Dispatchable(new.task, job.id, 1, new.priority)], using=alias)
    return job


def _insert_once(new: NewJob, alias: str) -> AbstractJob:
    """INSERT unless (task, idempotency_key) exists; else return the existing job. ``_meepo_created`` says which."""
    with transaction.atomic(using=alias):
        try:
            with transaction.atomic(using=alias):
                job = inserts.as_model(alias, inserts.insert(alias, [new])[0], new)
            job._meepo_created = True  # type: ignore[attr-defined]
            return job
        except IntegrityError:
            existing = (for_task(new.task).model.objects.using(alias).select_for_update()
                        .filter(task=new.task, idempotency_key=new.idempotency_key).first())
            if existing is None:
                raise
            existing._meepo_created = False  # type: ignore[attr-defined]
            return existing


def push_many(task: str, payloads: Iterable[Any] | None = None, *, json: Iterable[Any] | None = None,
              delay: Any = None, due_at: Any = None, priority: int = 0, unique_keys: Iterable[str | None] | None = None,
              unique_for: Any = None, unique_while: str | None = None, using: str | None = None,
              concurrency_key: str | None = None) -> list[AbstractJob]:
    """INSERT many jobs of one task (bytes ``payloads`` or JSON values ``json``) and return them with their ids.

    Every payload is checked before anything is written; the INSERTs (as few as the bytes allow) run in one
    transaction, and the whole batch is dispatched in one Redis round trip after the commit. ``unique_keys``
    gives a unique key (or None) per payload, as ``push(unique_key=...)`` with the batch's ``unique_for`` and
    ``unique_while``: where a job holding the key counts, it is returned in that place and not dispatched.
    ``concurrency_key`` gives every job of the batch that key (as ``push``).
    """
    get_task(task)
    flow_key = check_concurrency_key(task, concurrency_key)
    if (payloads is None) == (json is None):
        raise InvalidPayload("give either payloads= (bytes values) or json= (JSON values)")
    limit = get_settings().max_payload_bytes
    _check_batch("payloads" if payloads is not None else "json", payloads if payloads is not None else json)
    if payloads is not None:
        datas = [check_size(encode_payload(p), limit) for p in payloads]
    else:
        datas = [check_size(encode_payload(json=v), limit) for v in json or ()]
    priority = check_priority(priority)
    uniques = _unique_keys(unique_keys, len(datas), unique_for, unique_while)
    alias = _alias(using)
    now = db_now(alias)
    when = schedule(now, delay, due_at)
    if not datas:
        return []
    if tracing.ENABLED:
        with tracing.producer(task, len(datas)) as span:
            jobs = _push_many(task, datas, uniques, priority, alias, now, when, span.context, flow_key)
            span.pushed([j.id for j in jobs])
            return jobs
    return _push_many(task, datas, uniques, priority, alias, now, when, None, flow_key)


def _push_many(task: str, datas: Sequence[bytes], uniques: Sequence[unique.Unique | None] | None, priority: int,
               alias: str, now: datetime, when: Schedule, trace: str | None,
               flow_key: str | None = None) -> list[AbstractJob]:
    """INSERT the batch in one transaction; at the commit, dispatch it (if due now) and count it."""
    if uniques is not None:
        return _push_many_unique(task, datas, uniques, priority, alias, now, when, trace, flow_key)
    news = [NewJob(task, d, priority, None, now, when.due_at, None, trace, flow_key) for d in datas]
    with transaction.atomic(using=alias):
        ids = _bulk_insert(alias, news)
    if metrics.ENABLED:
        metrics.pushed(alias, task, len(ids))
    if when.immediate:
        outbox.after_transaction([Dispatchable(task, i, 1, priority) for i in ids], using=alias)
    return [inserts.as_model(alias, i, n) for i, n in zip(ids, news, strict=True)]


def _bulk_insert(alias: str, news: Sequence[NewJob]) -> list[int]:
    ids: list[int] = []
    for chunk in _chunks(news):
        ids += inserts.insert(alias, chunk)
    return ids


def _unique_keys(keys: Iterable[str | None] | None, count: int, unique_for: Any,
                 unique_while: Any) -> list[unique.Unique | None] | None:
    """push_many's ``unique_keys``, one per payload, each checked as push() checks one; None without them."""
    if keys is None:
        unique.check_unique(None, unique_for, unique_while)
        return None
    _check_batch("unique_keys", keys)
    keys = list(keys)
    if len(keys) != count:
        raise ValueError(f"push_many: unique_keys= has {len(keys)} key(s) for {count} payload(s); give one per "
                         f"payload (None for a job without a key)")
    checked = []
    for i, key in enumerate(keys):
        try:
            checked.append(unique.check_unique(key, unique_for if key is not None else None,
                                               unique_while if key is not None else None))
        except ValueError as exc:
            raise ValueError(f"push_many: unique_keys[{i}]: {exc}") from None
    if all(c is None for c in checked):
        unique.check_unique("x", unique_for, unique_while)  # still refuse a bad unique_for / unique_while
    return checked


def _push_many_unique(task: str, datas: Sequence[bytes], uniques: Sequence[unique.Unique | None], priority: int,
                      alias: str, now: datetime, when: Schedule, trace: str | None = None,
                      flow_key: str | None = None) -> list[AbstractJob]:
    news = [NewJob(task, d, priority, None, now, when.due_at, u.key if u else None, trace, flow_key)
            for d, u in zip(datas, uniques, strict=True)]
    jobs = unique.push_many_unique(news, uniques, alias, now, lambda batch: _bulk_insert(alias, batch))
    created = [j for j in jobs if j._meepo_created]  # type: ignore[attr-defined]
    if metrics.ENABLED:
        metrics.pushed(alias, task, len(created))
    if when.immediate and created:
        outbox.after_transaction([Dispatchable(task, j.id, 1, priority) for j in created], using=alias)
    return jobs


def _chunks(news: Sequence[NewJob]) -> Iterable[Sequence[NewJob]]:
    """Slices of at most BULK_ROWS rows and about BULK_BYTES bytes: one INSERT each."""
    start, size = 0, 0
    for i, new in enumerate(news):
        if i > start and (i - start >= BULK_ROWS or size + len(new.payload) > BULK_BYTES):
            yield news[start:i]
            start, size = i, 0
        size += len(new.payload) + 200
    yield news[start:]


def _check_batch(name: str, batch: object) -> None:
    """A batch is a list (or any iterable) of payloads; a single payload given by mistake is refused."""
    if isinstance(batch, str | bytes | bytearray | memoryview | Mapping) or not isinstance(batch, Iterable):
        raise InvalidPayload(f"push_many: {name}= must be a list (or other iterable) of payloads, one per job, not "
                             f"a single {type(batch).__name__}; use push() for one job")


def dispatch_now(items: Sequence[Dispatchable]) -> None:
    """Hand committed, due jobs to the process's outbox (dispatched in the background; never raises)."""
    outbox.put(items)
