"""The database dispatcher: the ``meepo_job`` table is the queue. No Redis, nothing to lose, nothing to re-dispatch.

``dispatch`` does nothing (the committed row *is* the message). ``fetch`` claims due ``todo`` rows straight from
the table, highest priority first, then in due order, a batch at a time:

* **MariaDB 10.6+, MySQL 8.0+, PostgreSQL 9.5+** — in one short transaction, ``SELECT id, cid … ORDER BY
  priority DESC, due_at, id LIMIT n FOR UPDATE SKIP LOCKED`` picks candidates that no other fetcher holds, and
  the state machine's conditional claim (:func:`~django_meepo.statemachine.claim`) takes them. Two fetchers
  never even try for the same row.
* **SQLite, and older MariaDB/MySQL** (no ``SKIP LOCKED``) — the same SELECT without a lock, then the same
  conditional claim in autocommit. Writers are serialised and the claim is conditioned on each row's cid, so a
  fetcher that loses a race simply wins nothing and tries again.

The index ``meepo_job_fetch_order`` (task, status, priority DESC, due_at, id) serves that query. ``wait``
sleeps for a short time that grows while the table stays empty (up to ``MEEPO["POLL_INTERVAL"]``) and starts
small again as soon as a fetch finds work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from django.db import InterfaceError, OperationalError, connections, transaction

from .. import sql
from ..checked import held_by
from ..clock import db_now
from ..db import discard_connection, is_connection_lost, run_checked
from ..states import ClaimedJob, Dispatchable, Ref
from ..tables import for_task
from .base import Claim, Deliver, Dispatcher, Source, in_order_of, limit_of
from .pgnotify import Listener, channel_for

log = logging.getLogger(__name__)

POLL_MIN = 0.02
# A fetch that lost every candidate to another fetcher (no SKIP LOCKED) tries again at once, this often.
LOST_RACE_RETRIES = 5
# MySQL/MariaDB deadlock and lock wait timeout; PostgreSQL deadlock and serialization failure.
_TRANSIENT = {1213, 1205}
_TRANSIENT_STATES = {"40P01", "40001"}


def _transient(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError):
        return False
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    state = getattr(getattr(exc, "__cause__", None), "sqlstate", None)
    return code in _TRANSIENT or state in _TRANSIENT_STATES or "database is locked" in str(exc)


def fair_shares(sources: Sequence[Source], count: int, start: int,
                limits: Mapping[str, int] | None = None) -> list[tuple[Source, int]]:
    """Split ``count`` over ``sources`` beginning at ``start``: an even share each (at least one), never more
    than a task's ``limits`` entry; a task with no room gets no share."""
    if not sources or count <= 0:
        return []
    order = [*sources[start % len(sources):], *sources[:start % len(sources)]]
    share = max(1, count // len(order))
    shares: list[tuple[Source, int]] = []
    left = count
    for source in order:
        if left <= 0:
            break
        take = limit_of(limits, source.task, min(share, left))
        if take > 0:
            shares.append((source, take))
            left -= take
    return shares


class DatabaseDispatcher(Dispatcher):
    name = "database"
    redispatches = False

    def __init__(self, *, using: str = "default", poll_interval: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep, listen: bool = False) -> None:
        self.using = using
        self.listen = listen  # LISTEN for NOTIFY on PostgreSQL (DISPATCH="database" only): see pgnotify.py
        self._listener: Listener | None = None
        self._next_poll = 0.0  # no query before this (monotonic), unless a notification came while listening
        self._waited = False  # a wait() since the last poll: the next fetch respects _next_poll
        self.poll_interval = max(POLL_MIN, poll_interval)
        self._sleep = sleep
        self._delay = POLL_MIN
        self._turn = 0

    # -- producer side
    def dispatch(self, items: Sequence[Dispatchable], *, prefixes: dict[str, str] | None = None) -> None:
        """Nothing to do: the committed row is the message."""

    # -- consumer side
    def fetch(self, sources: Sequence[Source], count: int, *, worker: str, claim: Claim,
              deliver: Deliver, limits: Mapping[str, int] | None = None) -> bool:
        """Claim due rows of each task in its own short transaction (SELECT … FOR UPDATE SKIP LOCKED, then the
        state machine's claim), delivering each task's jobs once its transaction committed — so a claim that
        raises for one task (a deadlock) never strands the jobs claimed for another."""
        listener = self._listener
        if (self._waited or (listener is not None and listener.connected)) and time.monotonic() < self._next_poll:
            return False  # not notified, the delay not over: the worker woke for its heartbeat, not to poll
        self._waited = False
        self._turn += 1
        found = 0
        fuller: list[tuple[Source, int]] = []  # tasks that gave their whole share may have more
        for source, share in fair_shares(sources, count, self._turn, limits):
            won = self._fetch_source(source, share, worker=worker, claim=claim)
            deliver(won)
            found += len(won)
            if len(won) == share:
                fuller.append((source, share))
        left = count - found
        for source, share in fuller if len(sources) > 1 else ():  # fill up from the tasks that have more
            want = limit_of(limits, source.task, left + share) - share  # within the task's room
            if left <= 0:
                break
            if want <= 0:
                continue
            more = self._fetch_source(source, min(left, want), worker=worker, claim=claim)
            deliver(more)
            found += len(more)
            left -= len(more)
        if found:
            self._delay = POLL_MIN
        self._next_poll = 0.0 if found else time.monotonic() + self._idle_delay()
        return False  # rows it could not win were won by another worker: nothing to fetch again at once

    def _fetch_source(self, source: Source, count: int, *, worker: str, claim: Claim) -> list[ClaimedJob]:
        for _ in range(LOST_RACE_RETRIES):
            try:
                candidates, won = self._claim_batch(source, count, worker=worker, claim=claim)
            except OperationalError as exc:
                if not _transient(exc):
                    raise
                log.debug("meepo: %s: fetch hit a lock conflict (%s); trying again", source.task, exc)
                continue
            if won or not candidates:
                return won
        return []

    def _claim_batch(self, source: Source, count: int, *, worker: str,
                     claim: Claim) -> tuple[list[Ref], list[ClaimedJob]]:
        """Pick candidates and claim them; returns (candidates, claimed). Survives a lost connection: the claim's
        transaction may or may not have committed, so what this worker holds at the next cid is read back."""
        using = self.using
        conn = connections[using]
        skip_locked = conn.features.has_select_for_update_skip_locked
        state: dict[str, list[Ref]] = {"candidates": []}

        def run() -> list[ClaimedJob]:
            now = db_now(using)
            if skip_locked and not conn.in_atomic_block:
                with transaction.atomic(using=using):
                    state["candidates"] = select_due(source.task, count, now=now, using=using, lock=True,
                                                     key_limit=source.key_limit)
                    return claim(source, state["candidates"]) if state["candidates"] else []
            state["candidates"] = select_due(source.task, count, now=now, using=using, lock=False,
                                             key_limit=source.key_limit)
            return claim(source, state["candidates"]) if state["candidates"] else []

        try:
            won = run()
        except (OperationalError, InterfaceError) as exc:
            if not is_connection_lost(exc) or conn.in_atomic_block:
                raise
            log.warning("meepo: %s: connection lost during a fetch (%s); re-checking its claims", source.task, exc)
            discard_connection(using)
            settle = lambda: held_by(source.task, state["candidates"], worker=worker, using=using)  # noqa: E731
            won = run_checked(using, settle, settle, what=f"re-check of a {source.task} claim", tries=30)
        return state["candidates"], in_order_of(won, state["candidates"])

    def _idle_delay(self) -> float:
        """After a poll that found nothing: the time to the next poll. Listening on PostgreSQL, the whole
        POLL_INTERVAL (a notification ends it early); else a delay that doubles from 0.02 s up to POLL_INTERVAL,
        so a queue that just went idle is re-polled soon and an idle one costs one query per POLL_INTERVAL."""
        listener = self._listener
        if listener is not None and listener.connected:
            return self.poll_interval
        delay = self._delay
        self._delay = min(self._delay * 2, self.poll_interval)
        return delay

    def wait(self, sources: Sequence[Source], timeout: float) -> None:
        """Sleep until the next poll is due, or ``timeout`` (the worker's loop wakes every second to heartbeat,
        and then calls ``fetch``, which after a wait does not query before the poll is due — so POLL_INTERVAL
        holds above 1 s too; a fetch with no wait before it, as in tests, always queries). On PostgreSQL with a
        live LISTEN connection, a notification naming one of ``sources``'s tasks ends the wait and makes the next
        fetch poll at once. A clock that jumps: ``time.monotonic`` does not."""
        listener = self._listening(sources)
        self._waited = True
        remaining = min(max(0.0, timeout), max(0.0, self._next_poll - time.monotonic()))
        if listener is not None and listener.connected:
            if listener.wait(remaining):
                self._delay = POLL_MIN
                self._next_poll = 0.0
            return
        if remaining > 0:
            self._sleep(remaining)

    def _listening(self, sources: Sequence[Source]) -> Listener | None:
        if not self.listen or connections[self.using].vendor != "postgresql":
            return None
        if self._listener is None:
            params = connections[self.using].get_connection_params()
            self._listener = Listener(params, {channel_for(s.key_prefix) for s in sources},
                                      {s.task for s in sources})
        return self._listener

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # -- sweeper side
    def missing(self, task: str, key_prefix: str, refs: Sequence[Ref]) -> list[Ref]:
        """Nothing is ever missing: the table is the queue."""
        return []

    def length(self, task: str, key_prefix: str) -> int:
        return for_task(task).model.objects.using(self.using).due(task, db_now(self.using)).count()


def select_due(task: str, count: int, *, now: datetime, using: str, lock: bool,
               key_limit: int | None = None) -> list[Ref]:
    """Up to ``count`` due todo rows of ``task`` by priority, due time and id; ``lock`` skips rows others hold;
    ``key_limit`` skips rows whose concurrency key has that many running (so one busy key never hides the
    others' rows; the claim still counts under the flow lock, limits.py)."""
    q = sql.sql_for(using, for_task(task).name)
    statement = sql.select_due(q, task, count, now=now, lock=lock, key_limit=key_limit)
    rows = q.fetchall(statement.sql, statement.params)
    return [Ref(int(i), int(c)) for i, c in rows]
