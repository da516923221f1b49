"""A worker's monitor thread: renews the leases of every job held, reports the worker alive, and enforces hard
time limits (a job over its limit is failed and its worker replaced: a Python thread cannot be killed)."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from django.db import DatabaseError

from . import statemachine as sm
from .clock import db_now
from .committer import Committer
from .context import JobContext
from .db import close_thread_connections, discard_connection
from .execution import FAILED, RunOutcome
from .holdings import FINISHED, QUEUED, RUNNING, TIMED_OUT, Held, Holdings
from .models import Attempt
from .registry import Task
from .states import Status
from .tables import for_task

log = logging.getLogger(__name__)


class Monitor:
    def __init__(self, holdings: Holdings, tasks: dict[str, Task], *, using: str, committer: Committer,
                 recycle: Callable[[str], None], report: Callable[[], None]) -> None:
        self.holdings = holdings
        self.tasks = tasks
        self.using = using
        self.committer = committer
        self.recycle = recycle
        self.report = report

    def run(self, stop: threading.Event) -> None:
        beat_every = min(t.options.heartbeat for t in self.tasks.values())
        last_beat = time.monotonic()
        try:
            while not stop.wait(0.25):
                try:
                    self.enforce_time_limits()
                    if time.monotonic() - last_beat >= beat_every:
                        last_beat = time.monotonic()
                        self.renew_leases()
                        self.report()
                except DatabaseError as exc:
                    log.warning("meepo: monitor could not reach the database (%s); retrying", exc)
                    discard_connection(self.using)
                except Exception:  # the monitor must outlive any error: without it every lease expires
                    log.exception("meepo: monitor error; going on")
                    discard_connection(self.using)
        finally:
            close_thread_connections()

    def renew_leases(self) -> None:
        """Renew the leases of the jobs held, finished ones included (their outcome may wait for the committer).

        A renewal finds a lease lost when the job's cid moved on: repushed, rescued, or committed — by this
        worker too, when its commit landed between reading the holdings and renewing. Only a job still queued
        or running (and not committed by its own function) is told its lease was lost; for a finished job the
        committer's commit settles it (a stale cid is reported there), so no false "lease lost" is logged.
        """
        held = [h for h in self.holdings.in_state(QUEUED, RUNNING, FINISHED) if h.ctx.committed is None]
        by_task: dict[str, list[Held]] = defaultdict(list)
        for h in held:
            by_task[h.task.name].append(h)
        for name, items in by_task.items():
            lost = sm.extend_leases([h.ctx.job.ref for h in items],
                                    lease_seconds=self.tasks[name].options.lease_timeout, using=self.using,
                                    task=name)
            if not lost:
                continue
            with self.holdings.lock:  # a job that finished meanwhile may have had its own commit win: not lost
                gone = [h for h in items if h.ctx.id in lost and h.state in (QUEUED, RUNNING)
                        and h.ctx.committed is None and not h.recorded]
            for h in gone:
                lease_lost(h.ctx, self.using)

    def enforce_time_limits(self) -> None:
        now = time.monotonic()
        with self.holdings.lock:
            over = [h for h in self.holdings.jobs.values() if h.state == RUNNING and h.task.options.time_limit
                    and h.ctx.committed is None and now - h.started > h.task.options.time_limit]
            for h in over:
                h.state = TIMED_OUT
        for h in over:
            try:
                self._fail_over_time(h)
            except Exception:
                log.exception("meepo: %s job %s: could not record its time-limit failure; its lease will expire "
                              "and the sweeper will handle it", h.task.name, h.ctx.id,
                              extra={"job_id": h.ctx.id, "task": h.task.name})
                discard_connection(self.using)
            finally:  # whatever the recording did, the thread over its limit cannot be killed: replace the worker
                self.holdings.discard([h])
                self.recycle(f"{h.task.name} job {h.ctx.id} overran its time limit and its thread cannot be killed")

    def _fail_over_time(self, h: Held) -> None:
        limit = h.task.options.time_limit or 0
        h.ctx.timed_out = True
        h.ctx.stop_event.set()
        message = f"job exceeded its hard time limit of {limit:g} s; its lease was given up"
        log.error("meepo: %s job %s: %s", h.task.name, h.ctx.id, message,
                  extra={"job_id": h.ctx.id, "task": h.task.name})
        self.committer.record_failure(
            h, RunOutcome(FAILED, error=message, error_class="TimeLimitExceeded"), Attempt.Outcome.TIME_LIMIT,
            db_now(self.using))


def lease_lost(ctx: JobContext, using: str | None = None) -> None:
    """Tell a run that it no longer holds its job (``job.stopping``); its outcome will not be recorded.

    With ``using``, the job's row says why: when an operator cancelled it, ``job.cancelled`` is set too (before
    ``stopping``, so a function that sees one sees both). That read failing (the database unreachable) leaves
    ``cancelled`` False and logs it; the run is told its lease was lost all the same.
    """
    if ctx.lease_lost:
        return
    cancelled = using is not None and was_cancelled(ctx, using)
    ctx.cancelled = cancelled
    ctx.lease_lost = True
    ctx.stop_event.set()
    if cancelled:
        log.warning("meepo: %s job %s: cancelled while it ran; this run's outcome will not be recorded", ctx.task,
                    ctx.id, extra={"job_id": ctx.id, "task": ctx.task})
        return
    log.warning("meepo: %s job %s: lease lost (the job was repushed, rescued or committed elsewhere); "
                "this run's outcome will not be recorded", ctx.task, ctx.id,
                extra={"job_id": ctx.id, "task": ctx.task})


def was_cancelled(ctx: JobContext, using: str) -> bool:
    """Whether the job of ``ctx`` is now ``cancelled`` past this run's cid (one indexed read by id)."""
    try:
        model = for_task(ctx.task).model
        return model.objects.using(using).filter(id=ctx.id, status=Status.CANCELLED, cid__gt=ctx.cid).exists()
    except DatabaseError as exc:
        log.warning("meepo: %s job %s: lost its lease; could not read whether it was cancelled (%s)", ctx.task,
                    ctx.id, exc, extra={"job_id": ctx.id, "task": ctx.task})
        return False
