"""A worker's committer thread: records the outcomes of finished runs through the state machine.

``done`` outcomes of one task are committed together (``sm.finish_done``); failures one by one (each writes its
attempt row). The state machine dispatches and calls ``on_finished`` for the commits it won. An outcome whose
commit already ran (won or lost) is not committed again (``Held.recorded``). No outcome can stop the thread or
hold back the others: see :meth:`Committer.commit_batch`.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import defaultdict
from dataclasses import replace
from datetime import datetime

from django.db import DatabaseError, DataError, connections

from . import statemachine as sm
from . import text
from .clock import db_now
from .db import close_thread_connections, discard_connection, is_connection_lost
from .exceptions import CommitConflict
from .execution import DONE, FAILED, RunOutcome
from .holdings import RELEASED, Held, Holdings
from .models import Attempt
from .options import TaskOptions

log = logging.getLogger(__name__)

BATCH_MAX = 500
TRIES = 3  # of a batch that fails although the database answers, before it is split (a deadlock passes)
WHY_MAX_BYTES = 2000
# A database error that says nothing about the outcome itself (not a DataError, not a packet too large, not a lost
# connection while the server answers) is retried this long before the batch is split and judged row by row: a
# read-only primary during a failover or a full disk must not make a successful run end 'failed'.
TRANSIENT_SECONDS = 60.0
_POISON_CODES = {1153, 1301, 2020}  # MySQL/MariaDB: packet too large, result too large, client packet limit


def _transient(exc: BaseException) -> bool:
    """A database error that is the database's state, not the outcome's content."""
    if not isinstance(exc, DatabaseError) or isinstance(exc, DataError) or is_connection_lost(exc):
        return False
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    return code not in _POISON_CODES

Item = tuple[Held, RunOutcome]


def _class_path(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def _nothing_to_record(held: Held) -> bool:
    """Failed by the monitor, taken over, handed back, or its commit already ran."""
    return held.recorded or held.ctx.timed_out or held.ctx.lease_lost or held.state == RELEASED


class Committer:
    def __init__(self, holdings: Holdings, *, worker_id: str, using: str) -> None:
        self.holdings = holdings
        self.worker_id = worker_id
        self.using = using
        self.queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self.processed = 0
        self.failed = 0

    def put(self, held: Held, outcome: RunOutcome) -> None:
        self.queue.put((held, outcome))

    def stop(self) -> None:
        """Commit what is queued, then end :meth:`run`."""
        self.queue.put(None)

    def run(self) -> None:
        try:
            while True:
                batch, last = self._next_batch()
                if batch:
                    try:
                        self.commit_batch(batch)
                    except Exception:  # commit_batch raises nothing; should it ever, the thread goes on
                        log.exception("meepo: committer error on job(s) %s; they are dropped (their leases will "
                                      "expire)", ", ".join(str(h.ctx.id) for h, _ in batch[:20]))
                        self.holdings.discard([h for h, _ in batch])
                if last:
                    return
        finally:
            close_thread_connections()

    def _next_batch(self) -> tuple[list[Item], bool]:
        first = self.queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < BATCH_MAX:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def commit_batch(self, batch: list[Item]) -> None:
        """Record ``batch``. Never raises, and no outcome is retried for ever.

        The adversary's view: any statement may raise, and its answer may be lost after it committed.

        * **Answer lost** (connection lost): the state machine settles it by token; when the error reaches
          here, the batch is retried after a pause (0.2 s doubling to 5 s) for as long as the database cannot
          be reached. An outcome whose commit ran (``Held.recorded``) is not committed again, so a retry
          neither counts a failure twice nor reports a false conflict.
        * **The next statement raises** after an earlier one of the batch won: the state machine has already
          dispatched and announced what it won, and the retry skips every outcome marked recorded.
        * **One bad outcome** (a value the database refuses, a statement over ``max_allowed_packet``, a driver's
          ``UnicodeEncodeError``, ``ValueError`` or ``TypeError``): a database error is tried ``TRIES`` times
          (a deadlock passes), a connection lost although the database answers too, any other exception
          once. Then the batch is split into single outcomes, so the others are recorded.
        * **Runs twice**: a single outcome that still cannot be recorded is recorded ``failed``, final (its run
          finished: running it again would run it twice), with an error naming why. If even that raises, it
          is logged and dropped from the holdings: its lease expires and the sweeper moves it to the task's
          zombie destination; only then may it run again, after a logged error.
        """
        failure = self._try(batch)
        if failure is None:
            return
        if len(batch) > 1:
            log.warning("meepo: could not record %d outcome(s) (%s: %s); recording them one by one", len(batch),
                        type(failure).__name__, failure)
            for item in batch:
                self.commit_batch([item])
            return
        self._record_unrecordable(batch[0], failure)

    def _try(self, batch: list[Item]) -> Exception | None:
        """Record ``batch``, retrying as :meth:`commit_batch` says; None, or the exception it gave up on."""
        delay, tries = 0.2, 0
        transient_until = time.monotonic() + TRANSIENT_SECONDS
        while True:
            try:
                self._record(batch)
                return None
            except Exception as exc:
                discard_connection(self.using)
                if is_connection_lost(exc) and not self._reachable():
                    pass  # the database is down: wait for it, however long
                elif _transient(exc) and time.monotonic() < transient_until:
                    pass  # read-only during a failover, a full disk, deadlocks: not the outcome's fault
                elif isinstance(exc, DatabaseError) and tries + 1 < TRIES:
                    tries += 1
                else:
                    return exc
                ids = ", ".join(str(h.ctx.id) for h, _ in batch[:10])
                log.warning("meepo: could not record %d outcome(s) (job %s) (%s); retrying in %.1f s",
                            len(batch), ids, exc, delay, extra={"job_id": batch[0][0].ctx.id})
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _reachable(self) -> bool:
        try:
            with connections[self.using].cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except Exception:
            discard_connection(self.using)
            return False

    def _record(self, batch: list[Item]) -> None:
        now = db_now(self.using)
        done: dict[str, list[Item]] = defaultdict(list)
        settled: list[Held] = []
        for held, outcome in batch:
            if _nothing_to_record(held):
                settled.append(held)
            elif outcome.kind == DONE:
                done[held.task.name].append((held, outcome))
            elif outcome.kind == FAILED:
                self.record_failure(held, outcome, Attempt.Outcome.FAILED, now)
                settled.append(held)
            else:
                settled.append(held)
        for task, items in done.items():  # the state machine calls on_finished for the commits it won
            results = {h.ctx.id: o.result for h, o in items if o.result is not None}
            sm.finish_done(task, [h.ctx.job.ref for h, _ in items], using=self.using, now=now,
                           results=results or None)
            for h, _ in items:
                h.recorded = True
            settled += [h for h, _ in items]
        self.holdings.discard(settled)
        self.processed += len(batch)

    def _record_unrecordable(self, item: Item, exc: Exception) -> None:
        """Record as failed (final) one outcome that could not be recorded; if even that raises, drop it."""
        held, outcome = item
        extra = {"job_id": held.ctx.id, "task": held.task.name}
        if not _nothing_to_record(held):
            why = text.error_text(f"{_class_path(exc)}: {exc}", WHY_MAX_BYTES)
            log.error("meepo: %s job %s: its %s outcome could not be recorded (%s); recording it as failed",
                      held.task.name, held.ctx.id, outcome.kind, why, extra=extra)
            original = f" (it failed with {outcome.error_class or 'an error'})" if outcome.kind == FAILED else ""
            error = (f"the run ended {outcome.kind!r}{original} but its outcome could not be recorded: {why}; "
                     f"recorded as failed instead, and not retried (it ran to its end once already)")
            options = replace(held.ctx.retry_options or held.task.options, max_failed_times=1)
            try:
                self.record_failure(held, RunOutcome(FAILED, error=error, error_class=_class_path(exc)),
                                    Attempt.Outcome.FAILED, db_now(self.using), options=options)
            except Exception:
                discard_connection(self.using)
                log.exception("meepo: %s job %s: could not record it as failed either; dropped: its lease will "
                              "expire and the sweeper will handle it", held.task.name, held.ctx.id, extra=extra)
        held.recorded = True
        self.holdings.discard([held])
        self.processed += 1

    def record_failure(self, held: Held, outcome: RunOutcome, kind: str, now: datetime, *,
                       options: TaskOptions | None = None) -> str | None:
        """Commit a failed run (retry or final); its new status, or None when the commit lost (stale cid)."""
        options = options or held.ctx.retry_options or held.task.options
        try:
            result = sm.finish_failed(held.task.name, held.ctx.job, options, error=outcome.error,
                                      error_class=outcome.error_class, worker=self.worker_id, using=self.using,
                                      outcome=kind, now=now)
        except CommitConflict as exc:
            held.recorded = True
            log.warning("meepo: %s", exc, extra={"job_id": held.ctx.id, "task": held.task.name})
            return None
        held.recorded = True
        self.failed += 1
        return result.status
