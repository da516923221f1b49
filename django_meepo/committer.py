"""A worker's committer thread: records the outcomes of finished runs through the state machine.

``done`` outcomes of one task are committed in one statement; failures one by one (each writes its attempt row).
A batch that hits a database error is retried after a pause; an outcome whose commit already ran (won or lost) is
not committed again (``Held.recorded``).
"""

from __future__ import annotations

import logging
import queue
import time
from collections import defaultdict
from datetime import datetime

from django.db import DatabaseError

from . import statemachine as sm
from .clock import db_now
from .db import close_thread_connections, discard_connection
from .exceptions import CommitConflict
from .execution import DONE, FAILED, RunOutcome
from .holdings import RELEASED, Held, Holdings
from .models import Attempt

log = logging.getLogger(__name__)

BATCH_MAX = 500


class Committer:
    def __init__(self, holdings: Holdings, *, worker_id: str, using: str) -> None:
        self.holdings = holdings
        self.worker_id = worker_id
        self.using = using
        self.queue: queue.SimpleQueue[tuple[Held, RunOutcome] | None] = queue.SimpleQueue()
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
                first = self.queue.get()
                batch = [] if first is None else [first]
                done = first is None
                while not done and len(batch) < BATCH_MAX:
                    try:
                        item = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        done = True
                    else:
                        batch.append(item)
                if batch:
                    self.commit_batch(batch)
                if done:
                    return
        finally:
            close_thread_connections()

    def commit_batch(self, batch: list[tuple[Held, RunOutcome]]) -> None:
        delay = 0.2
        while True:
            try:
                self._record(batch)
                return
            except DatabaseError as exc:
                log.warning("meepo: could not record %d outcome(s) (%s); retrying", len(batch), exc)
                discard_connection(self.using)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _record(self, batch: list[tuple[Held, RunOutcome]]) -> None:
        now = db_now(self.using)
        done: dict[str, list[tuple[Held, RunOutcome]]] = defaultdict(list)
        settled: list[Held] = []
        for held, outcome in batch:
            if held.recorded or held.ctx.timed_out or held.ctx.lease_lost or held.state == RELEASED:
                settled.append(held)  # failed by the monitor, taken over, or handed back: nothing to record
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

    def record_failure(self, held: Held, outcome: RunOutcome, kind: str, now: datetime) -> str | None:
        """Commit a failed run (retry or final); its new status, or None when the commit lost (stale cid)."""
        options = held.ctx.retry_options or held.task.options
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
