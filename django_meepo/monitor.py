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
        finally:
            close_thread_connections()

    def renew_leases(self) -> None:
        held = [h for h in self.holdings.in_state(QUEUED, RUNNING, FINISHED) if h.ctx.committed is None]
        by_task: dict[str, list[Held]] = defaultdict(list)
        for h in held:
            by_task[h.task.name].append(h)
        for name, items in by_task.items():
            lost = sm.extend_leases([h.ctx.job.ref for h in items],
                                    lease_seconds=self.tasks[name].options.lease_timeout, using=self.using)
            for h in items:
                if h.ctx.id in lost:
                    lease_lost(h.ctx)

    def enforce_time_limits(self) -> None:
        now = time.monotonic()
        with self.holdings.lock:
            over = [h for h in self.holdings.jobs.values() if h.state == RUNNING and h.task.options.time_limit
                    and h.ctx.committed is None and now - h.started > h.task.options.time_limit]
            for h in over:
                h.state = TIMED_OUT
        for h in over:
            limit = h.task.options.time_limit
            h.ctx.timed_out = True
            h.ctx.stop_event.set()
            message = f"job exceeded its hard time limit of {limit:g} s; its lease was given up"
            log.error("meepo: %s job %s: %s", h.task.name, h.ctx.id, message,
                      extra={"job_id": h.ctx.id, "task": h.task.name})
            self.committer.record_failure(
                h, RunOutcome(FAILED, error=message, error_class="TimeLimitExceeded"), Attempt.Outcome.TIME_LIMIT,
                db_now(self.using))
            self.holdings.discard([h])
            self.recycle(f"{h.task.name} job {h.ctx.id} overran its time limit and its thread cannot be killed")


def lease_lost(ctx: JobContext) -> None:
    if not ctx.lease_lost:
        ctx.lease_lost = True
        ctx.stop_event.set()
        log.warning("meepo: %s job %s: lease lost (the job was repushed, rescued or committed elsewhere); "
                    "this run's outcome will not be recorded", ctx.task, ctx.id,
                    extra={"job_id": ctx.id, "task": ctx.task})
