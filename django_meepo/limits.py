"""Global flow limits on claims: ``CONCURRENCY`` (per task), ``KEY_CONCURRENCY`` (per ``concurrency_key``) and
the rate limits of ratelimit.py, across every worker on every host.

A claim is where a job starts to count, so the limits are enforced there, in the database — the only place every
worker agrees on (DESIGN §1). For a task with a concurrency limit, or a rate counted in the database, a claim:

1. reads which of its candidates are still ``todo`` at their cid and due, with their ``concurrency_key``;
2. in one transaction, first takes the task's flow lock — an UPDATE of its ``FlowLimit`` row (``flow_key=""``),
   a row lock on MariaDB/MySQL/PostgreSQL and the write lock on SQLite (``BEGIN IMMEDIATE``, writes are
   serialised) — so two claims of one task never count at the same time;
3. counts the task's jobs running now: ``doing`` with a lease not yet expired (on the database's clock), per task
   and per key. A job whose worker died stops counting when its lease expires, even before the sweeper moves it,
   so a dead worker's slot is never leaked;
4. keeps the candidates the limits leave room for (then those that get their rate tokens), in the order given,
   and claims them with the state machine's ``claim`` — in the same transaction, so the count and the claim are
   one step and the next claim of the task counts this one.

The candidates held back are :attr:`Gated.refused`: left ``todo`` at their cid, no attempt counted, no row
written. The worker hands them back to its dispatcher (Redis: at the queue's tail; the database dispatcher: they
are still in the table) and does not fetch the task again for :attr:`Gated.retry_after` seconds when the task was
full, so a limited task waits without spinning.

The adversary's view:

* **two workers claim the last slot at once**: the second waits on the flow lock, then counts the first's claim
  (committed) and finds no room. Counts are read after the lock (each statement's own snapshot under READ
  COMMITTED, Django's default on MySQL; the first read of the transaction under REPEATABLE READ).
* **the transaction's answer is lost**: inside the transaction nothing is retried; the error goes to the worker's
  loop, and a claim that did commit is found by the worker's re-check (``held_by``) when the entry comes again.
* **the lock's row is missing** (first use, or deleted by hand): it is created before the transaction
  (``ensure_rows``, once per process), and a lock that matched no row is a ``DatabaseError`` (the worker's
  loop retries, the row is created again) rather than an unlocked count.
* **a live worker's heartbeat is late past its lease**: its job no longer counts, so for that moment one more may
  start — the same rule by which the sweeper would run it again; leases are renewed every ``HEARTBEAT`` seconds,
  a third of the lease by default.
* **a job claimed by a worker that keeps it waiting in memory** still counts (it is ``doing``): the worker fetches
  no prefetch for a limited task, so a claim starts at once.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import DatabaseError, transaction
from django.db.models import Count, F

from . import statemachine as sm
from .clock import db_now
from .conf import get_settings
from .exceptions import DispatchError, MeepoError
from .models import FlowLimit
from .options import TaskOptions
from .ratelimit import Grant, Limiter, TaskRates
from .states import ClaimedJob, Dispatchable, Ref, Status
from .tables import for_task

if TYPE_CHECKING:
    from .dispatch import Dispatcher
    from .registry import Task

log = logging.getLogger(__name__)

# A task found full is not fetched again by that worker for this long (unless a rate says when a token comes).
FULL_RETRY_SECONDS = 0.25
MAX_RETRY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Candidate:
    ref: Ref
    key: str | None
    priority: int


@dataclass(frozen=True, slots=True)
class Gated:
    """What a limited claim did: the jobs won, the candidates held back by a limit (``todo`` at their cid), and
    how long before the task is worth fetching again (0: at once)."""

    won: list[ClaimedJob]
    refused: list[Candidate]
    retry_after: float


class FlowGate:
    """The limited claim of one worker's tasks (``rates``: each limited task's parsed rates)."""

    def __init__(self, limiter: Limiter, *, using: str) -> None:
        self.limiter = limiter
        self.using = using
        self._rates: dict[str, TaskRates] = {}
        self._ensured: set[tuple[str, str]] = set()  # FlowLimit rows known to exist (task, flow_key)

    def rates_of(self, task: str, options: TaskOptions, key_prefix: str) -> TaskRates:
        rates = self._rates.get(task)
        if rates is None:
            rates = self._rates[task] = TaskRates.of(task, key_prefix, options.rate, options.key_rate)
        return rates

    def claim(self, task: str, options: TaskOptions, key_prefix: str, refs: Sequence[Ref], *, worker: str,
              lease_seconds: float) -> Gated:
        """Claim those of ``refs`` that ``options``' limits leave room for (module docstring)."""
        using = self.using
        if not options.limited or not refs:
            return Gated(sm.claim(task, list(refs), worker=worker, lease_seconds=lease_seconds, using=using), [], 0)
        candidates = read_candidates(task, refs, using=using)
        if not candidates:
            return Gated([], [], 0.0)
        rates = self.rates_of(task, options, key_prefix)
        if not (options.concurrency or options.key_concurrency) and self.limiter.redis_ready():
            grant = self.limiter.take_redis(rates, [c.key for c in candidates])
            if grant is not None:  # rates only, through Redis: no lock, no transaction
                return self._claim_granted(task, candidates, grant, worker=worker, lease_seconds=lease_seconds)
        self._ensure(task, sorted({c.key for c in candidates if c.key is not None}) if options.key_rate else [])
        with transaction.atomic(using=using):
            try:
                lock(task, using=using)
            except DatabaseError:
                self._ensured = {e for e in self._ensured if e[0] != task}  # a missing row is made again next time
                raise
            allowed, full = within_concurrency(task, options, candidates, using=using)
            refused = [c for c in candidates if c not in allowed]
            grant = Grant([True] * len(allowed), 0.0)
            if rates.any and allowed:
                grant = (self.limiter.take_redis(rates, [c.key for c in allowed]) if self.limiter.redis_ready()
                         else None) or self.limiter.take_database(rates, [c.key for c in allowed], using=using,
                                                                  now=db_now(using))
            gated = self._claim_granted(task, allowed, grant, worker=worker, lease_seconds=lease_seconds)
        retry = max(gated.retry_after, FULL_RETRY_SECONDS if full else 0.0)
        return Gated(gated.won, refused + gated.refused, min(retry, MAX_RETRY_SECONDS))

    def _ensure(self, task: str, keys: Sequence[str]) -> None:
        names = [n for n in ("", *keys) if (task, n) not in self._ensured]
        if names:
            ensure_rows(task, [n for n in names if n], using=self.using)
            self._ensured.update((task, n) for n in ("", *names))

    def _claim_granted(self, task: str, candidates: Sequence[Candidate], grant: Grant, *, worker: str,
                       lease_seconds: float) -> Gated:
        """Claim the candidates that got their tokens. The task is held off (``retry_after``) only when none did:
        one key out of tokens must not hold up the other keys."""
        chosen = [c for c, ok in zip(candidates, grant.granted, strict=True) if ok]
        refused = [c for c, ok in zip(candidates, grant.granted, strict=True) if not ok]
        won = sm.claim(task, [c.ref for c in chosen], worker=worker, lease_seconds=lease_seconds,
                       using=self.using) if chosen else []
        hold = min(max(grant.retry_after, 0.001), MAX_RETRY_SECONDS) if refused and not chosen else 0.0
        return Gated(won, refused, hold)


def read_candidates(task: str, refs: Sequence[Ref], *, using: str) -> list[Candidate]:
    """The refs still ``todo`` at their cid and due, in the order given, with their key and priority; the others
    (stale, duplicated, not yet due) are left out, as the claim itself would leave them."""
    wanted = {r.id: r.cid for r in refs}
    rows = {i: (c, k, p) for i, c, k, p in for_task(task).model.objects.using(using).filter(
        id__in=list(wanted), task=task, status=Status.TODO, due_at__lte=db_now(using))
        .values_list("id", "cid", "concurrency_key", "priority")}
    out: list[Candidate] = []
    seen: set[int] = set()
    for ref in refs:
        row = rows.get(ref.id)
        if row is not None and row[0] == ref.cid and ref.id not in seen:
            seen.add(ref.id)
            out.append(Candidate(ref, row[1], row[2]))
    return out


def ensure_rows(task: str, keys: Sequence[str], *, using: str) -> None:
    """The task's lock row and the key buckets' rows exist (created full, ``refilled_at`` NULL). Idempotent:
    a row another worker created at the same time is left as it is."""
    names = ["", *keys]
    have = set(FlowLimit.objects.using(using).filter(task=task, flow_key__in=names)
               .values_list("flow_key", flat=True))
    missing = [FlowLimit(task=task, flow_key=name) for name in names if name not in have]
    if missing:
        FlowLimit.objects.using(using).bulk_create(missing, ignore_conflicts=True)


def lock(task: str, *, using: str) -> None:
    """Take the task's flow lock for the rest of the transaction (an UPDATE: the first write of the transaction,
    so on SQLite it waits for the write lock instead of failing to upgrade a read)."""
    if not FlowLimit.objects.using(using).filter(task=task, flow_key="").update(claims=F("claims") + 1):
        # a DatabaseError: the worker's loop treats it as any failed claim (the entries come again) and goes on
        raise DatabaseError(f"the flow-limit row of task {task!r} is missing (deleted by hand?); it is created "
                            f"again before the next claim")


def running(task: str, *, using: str, keys: Sequence[str] = ()) -> tuple[int, Counter[str]]:
    """Jobs of ``task`` running now (``doing``, lease not expired on the database's clock) and, of ``keys``,
    how many per key."""
    now = db_now(using)
    live = for_task(task).model.objects.using(using).filter(task=task, status=Status.DOING, lease_until__gte=now)
    per_key: Counter[str] = Counter()
    if keys:
        for key, n in (live.filter(concurrency_key__in=list(keys)).order_by().values("concurrency_key")
                       .annotate(n=Count("id")).values_list("concurrency_key", "n")):
            per_key[str(key)] = n
    return live.count(), per_key


def within_concurrency(task: str, options: TaskOptions, candidates: Sequence[Candidate], *,
                       using: str) -> tuple[list[Candidate], bool]:
    """The candidates the concurrency limits leave room for (in order), and whether the task itself is full —
    counted under the flow lock."""
    if not (options.concurrency or options.key_concurrency):
        return list(candidates), False
    keys = sorted({c.key for c in candidates if c.key is not None}) if options.key_concurrency else []
    total, per_key = running(task, using=using, keys=keys)
    room = options.concurrency - total if options.concurrency else len(candidates)
    allowed: list[Candidate] = []
    for c in candidates:
        if room <= 0:
            break
        if c.key is not None and options.key_concurrency and per_key[c.key] >= options.key_concurrency:
            continue
        allowed.append(c)
        room -= 1
        if c.key is not None:
            per_key[c.key] += 1
    full = bool(options.concurrency) and room <= 0 and len(allowed) < len(candidates)
    return allowed, full or not allowed


class WorkerFlow:
    """A worker's side of the limits: its gate, the tasks it holds off for a moment, and the refused jobs to hand
    back to its dispatcher after each fetch (touched by the worker's fetching thread only)."""

    def __init__(self, gate: FlowGate | None) -> None:
        self.gate = gate
        self._held_until: dict[str, float] = {}
        self._refused: list[Dispatchable] = []
        self._prefixes: dict[str, str] = {}

    def held(self) -> set[str]:
        """The tasks not to fetch now: found full (or out of tokens) less than their ``retry_after`` ago."""
        now = time.monotonic()
        return {t for t, until in self._held_until.items() if until > now}

    def wake_in(self, most: float) -> float:
        """Seconds until the first held task may be fetched again (at most ``most``): how long an idle fetch
        loop may wait."""
        now = time.monotonic()
        waits = [until - now for until in self._held_until.values() if until > now]
        return min([most, *waits])

    def claim(self, task: str, options: TaskOptions, key_prefix: str, refs: Sequence[Ref], *, worker: str,
              lease_seconds: float) -> tuple[list[ClaimedJob], set[int]]:
        """The gate's claim; (the jobs won, the ids refused by a limit — ``todo`` at their cid, to hand back)."""
        assert self.gate is not None
        gated = self.gate.claim(task, options, key_prefix, refs, worker=worker, lease_seconds=lease_seconds)
        if gated.retry_after > 0:
            self._held_until[task] = time.monotonic() + gated.retry_after
        self._refused += [Dispatchable(task, c.ref.id, c.ref.cid, c.priority) for c in gated.refused]
        self._prefixes[task] = key_prefix
        return gated.won, {c.ref.id for c in gated.refused}

    def give_back(self, dispatcher: Dispatcher) -> None:
        """Dispatch the refused jobs again (after the fetch acknowledged their entries: Redis queues them at the
        tail; the database dispatcher does nothing, the rows are the queue). Redis down: they are ``todo`` and
        missing from Redis, so the sweeper dispatches them again — nothing is lost."""
        if not self._refused:
            return
        items, self._refused = self._refused, []
        try:
            dispatcher.dispatch(items, prefixes=dict(self._prefixes))
        except DispatchError as exc:
            log.warning("meepo: could not hand back %d job(s) held back by a flow limit (%s); the sweeper will "
                        "dispatch them again", len(items), exc)


def worker_flow(tasks: Sequence[Task], *, using: str) -> WorkerFlow:
    """The flow control of a worker consuming ``tasks``: a gate when one of them is limited, with Redis for rates
    unless ``DISPATCH`` is ``"database"``."""
    if not any(t.options.limited for t in tasks):
        return WorkerFlow(None)
    client = None
    if any(t.options.rate or t.options.key_rate for t in tasks) and get_settings().dispatch != "database":
        from .dispatch import redis_client

        try:
            client = redis_client()
        except MeepoError as exc:  # no Redis alias: rates are counted in the database
            log.warning("meepo: rate limits are counted in the database: %s", exc)
    return WorkerFlow(FlowGate(Limiter(client), using=using))
