"""The sweeper: finds in the database whatever the fast path lost, and rescues jobs whose lease expired.

Each tick (about once a second), for every task it leads (one leader per task, by a lease in the database):

* gives back entries that dead workers popped but never claimed (their in-flight lists);
* dispatches delayed jobs and retries whose due time has come (``due_at`` passed since the last tick) — so
  due times are honoured within about a second whatever the sweep period;
* every ``SWEEP_PERIOD`` seconds: moves jobs whose lease expired to the task's zombie destination (looping
  until none is left — the limit is rows per query, not per period), and re-dispatches due ``todo`` jobs that
  the dispatcher does not hold (a dispatch that failed, an entry Redis lost);
* when Redis lost everything (flushed, restarted empty): re-dispatches every due ``todo`` job at once;
* with ``MEEPO["RETENTION_DAYS"]`` set, deletes finished jobs older than that, a little per tick (``purge.py``);
* once a minute, writes a sample of each task it leads for the admin dashboard's charts (``samples.py``);
* pushes the job of each due tick of ``MEEPO["SCHEDULE"]`` (``schedule.py``): every sweeper, leader or not —
  the database's unique key on the tick makes it one job per tick.

With a dispatcher that cannot lose what is due (``Dispatcher.redispatches`` is False: the database dispatcher)
the sweeper only rescues expired leases.

A backlog still waiting in Redis is never pushed again: a job is re-dispatched only when Redis's record of
what it holds lacks it at its cid (``Dispatcher.missing``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError
from django.db.models import F

from . import leader
from . import statemachine as sm
from .clock import db_now
from .conf import get_settings
from .db import close_thread_connections, discard_connection
from .dispatch.base import Dispatcher, Source
from .exceptions import DispatchError
from .purge import Retention
from .registry import Task
from .samples import Sampler
from .schedule import Scheduler
from .states import Status
from .tables import for_task

log = logging.getLogger(__name__)

LEADER_TTL = 10.0
# A todo row changed less than this long ago may still be on its way to Redis (its committer dispatches it).
IN_FLIGHT_GRACE = 2.0
# The due scan looks this far behind the previous tick, for rows committed late with a due time already past.
DUE_SLACK = 2.0
# Pages of SWEEP_LIMIT rows a scan for lost jobs reads per tick before it goes on at the next tick.
SCAN_PAGES_PER_TICK = 5


@dataclass(slots=True)
class SweepReport:
    leading: int = 0
    recovered: int = 0
    expired: int = 0
    redispatched: int = 0
    full_scan: bool = False
    purged: int = 0
    scheduled: int = 0
    sampled: int = 0

    def __iadd__(self, other: SweepReport) -> SweepReport:
        self.leading = max(self.leading, other.leading)
        self.recovered += other.recovered
        self.expired += other.expired
        self.redispatched += other.redispatched
        self.purged += other.purged
        self.scheduled += other.scheduled
        self.sampled += other.sampled
        self.full_scan = self.full_scan or other.full_scan
        return self


def source_of(task: Task) -> Source:
    return Source(task=task.name, key_prefix=task.options.key_prefix or get_settings().key_prefix,
                  lease_seconds=task.options.lease_timeout, key_limit=task.options.key_concurrency)


class Sweeper:
    def __init__(self, tasks: Sequence[Task], *, dispatcher: Dispatcher, using: str, holder: str) -> None:
        self.tasks = list(tasks)
        self.dispatcher = dispatcher
        self.using = using
        self.holder = holder
        self._last_period: dict[str, float] = {}
        self._watermark: dict[str, datetime] = {}
        self._scans: dict[str, list[_Scan]] = {}  # per task: the scan in progress (a list of at most one)
        self.retention = Retention(using=using, holder=holder)
        self.scheduler = Scheduler(using=using)
        self.sampler = Sampler(using=using)
        self._unreachable = False

    @property
    def interval(self) -> float:
        return min([1.0, *(t.options.sweep_period for t in self.tasks)])

    def tick(self, now: datetime | None = None, monotonic: float | None = None) -> SweepReport:
        now = now or db_now(self.using)
        mono = time.monotonic() if monotonic is None else monotonic
        report = SweepReport(purged=self.retention.step(now, mono), scheduled=self.scheduler.step(now))
        leading = [t for t in self.tasks
                   if leader.hold(f"sweeper:{t.name}", self.holder, ttl=LEADER_TTL, now=now, using=self.using)]
        report.leading = len(leading)
        if not leading:
            return report
        redis_ok = self.dispatcher.redispatches
        try:
            sources = [source_of(t) for t in leading]
            report.recovered = self.dispatcher.recover(sources)
            report.full_scan = self.dispatcher.lost_everything(sources)
            if self._unreachable:
                log.warning("meepo: sweeper reaches the dispatcher again")
            self._unreachable = False
        except DispatchError as exc:
            redis_ok = False
            if not self._unreachable:  # once per outage, not once per tick
                log.warning("meepo: sweeper cannot reach the dispatcher (%s); rescuing leases only", exc)
            self._unreachable = True
        if report.full_scan:
            log.info("meepo: the dispatcher holds nothing we know of (first sweep, or Redis lost its data): "
                     "re-dispatching every due todo job it lacks")
        for task in leading:
            period_due = mono - self._last_period.get(task.name, float("-inf")) >= task.options.sweep_period
            if period_due:
                self._last_period[task.name] = mono
                report.expired += self.expire(task, now)
            if not redis_ok:
                continue
            try:
                report.redispatched += self.dispatch_newly_due(task, now)
                if report.full_scan or task.name not in self._scans or (period_due and not self._scans[task.name]):
                    self._scans[task.name] = [_Scan(None if report.full_scan else IN_FLIGHT_GRACE)]
                report.redispatched += self.continue_scan(task, now)
                self._watermark[task.name] = now
            except DispatchError as exc:
                log.warning("meepo: sweeper could not dispatch %s jobs: %s", task.name, exc,
                            extra={"task": task.name})
        report.sampled = self._sample(leading, now)
        return report

    def _sample(self, leading: Sequence[Task], now: datetime) -> int:
        """The charts' samples (after the rescue work, which a failing sample must not hold up)."""
        try:
            return self.sampler.step([t.name for t in leading], now)
        except DatabaseError as exc:
            log.warning("meepo: sweeper could not write the charts' samples (%s); trying again at the next tick", exc)
            return 0

    # -- leases
    def expire(self, task: Task, now: datetime) -> int:
        """Move every job of ``task`` whose lease expired to its zombie destination (the state machine
        dispatches those it made due and calls ``on_finished`` for those it ended)."""
        total = 0
        while True:
            outcome = sm.expire_leases(task.name, task.options, using=self.using, now=now,
                                       job_options=task.job_options)
            total += len(outcome.changed)
            if outcome.found < task.options.sweep_limit:
                return total

    # -- dispatch what Redis lacks
    def dispatch_newly_due(self, task: Task, now: datetime) -> int:
        """Delayed jobs and retries that became due since the previous tick (nobody dispatched them)."""
        since = self._watermark.get(task.name)
        if since is None:
            return 0  # the first tick's scan covers them
        qs = (for_task(task.name).model.objects.using(self.using)
              .filter(task=task.name, status=Status.TODO, due_at__lte=now,
                      due_at__gt=since - timedelta(seconds=DUE_SLACK))
              .filter(due_at__gt=F("updated_at")))
        return self._dispatch_missing(task, qs, limit=task.options.sweep_limit)

    def continue_scan(self, task: Task, now: datetime) -> int:
        """The next pages of the scan for due todo jobs that the dispatcher does not hold.

        A scan walks the due ``todo`` rows in (due_at, id) order, at most :data:`SCAN_PAGES_PER_TICK` pages of
        ``SWEEP_LIMIT`` rows a tick, and goes on from where it stopped at the next tick — so a backlog of a
        million rows never makes one tick outlast the leader lease (which another sweeper would take to start the
        same scan), and the lease is renewed between ticks. A new scan starts every ``SWEEP_PERIOD`` (rows
        changed in the last ``IN_FLIGHT_GRACE`` seconds are left to their committer), and at once, without the
        grace, when the dispatcher lost everything.
        """
        scans = self._scans.get(task.name)
        if not scans:
            return 0
        scan = scans[0]
        qs = for_task(task.name).model.objects.using(self.using).filter(task=task.name, status=Status.TODO,
                                                                         due_at__lte=now)
        if scan.grace:
            qs = qs.filter(updated_at__lt=now - timedelta(seconds=scan.grace))
        sent = 0
        for pages, page in enumerate(_pages(qs, task.options.sweep_limit, after=scan.cursor), start=1):
            sent += self._dispatch_page(task, page)
            scan.cursor = (page[-1][3], page[-1][0])
            if len(page) < task.options.sweep_limit:
                scans.clear()
                break
            if pages >= SCAN_PAGES_PER_TICK:
                break
        else:
            scans.clear()
        if sent:
            log.info("meepo: dispatched %d due %s job(s) that Redis did not hold", sent, task.name,
                     extra={"task": task.name})
        return sent

    def redispatch_lost(self, task: Task, now: datetime, *, grace: float | None) -> int:
        """Every due todo job of ``task`` that the dispatcher does not hold (older than ``grace`` seconds), in one
        go (the commands' and tests' way; the sweeper's ticks walk the same rows with :meth:`continue_scan`)."""
        qs = for_task(task.name).model.objects.using(self.using).filter(task=task.name, status=Status.TODO,
                                                                         due_at__lte=now)
        if grace:
            qs = qs.filter(updated_at__lt=now - timedelta(seconds=grace))
        return self._dispatch_missing(task, qs, limit=task.options.sweep_limit)

    def _dispatch_missing(self, task: Task, qs: object, *, limit: int) -> int:
        sent = sum(self._dispatch_page(task, page) for page in _pages(qs, limit))
        if sent:
            log.info("meepo: dispatched %d due %s job(s) that Redis did not hold", sent, task.name,
                     extra={"task": task.name})
        return sent

    def _dispatch_page(self, task: Task, page: list[tuple[int, int, int, datetime]]) -> int:
        source = source_of(task)
        refs = [sm.Ref(i, c) for i, c, _, _ in page]
        priorities = {i: p for i, _, p, _ in page}
        lost = self.dispatcher.missing(task.name, source.key_prefix, refs)
        if lost:
            self.dispatcher.dispatch([sm.Dispatchable(task.name, r.id, r.cid, priorities[r.id]) for r in lost],
                                     prefixes={task.name: source.key_prefix})
        return len(lost)

    # -- loop
    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set; a failing tick is logged and the next one tries again."""
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self.tick()
                except DatabaseError as exc:
                    log.warning("meepo: sweep failed (%s); retrying", exc)
                    discard_connection(self.using)
                except Exception:
                    log.exception("meepo: sweep failed unexpectedly; retrying")
                stop.wait(max(0.05, self.interval - (time.monotonic() - started)))
        finally:
            for task in self.tasks:
                with contextlib.suppress(DatabaseError):
                    leader.let_go(f"sweeper:{task.name}", self.holder, using=self.using)
            close_thread_connections()


@dataclass(slots=True)
class _Scan:
    """A scan for lost due jobs in progress: its grace, and the last (due_at, id) it covered."""

    grace: float | None
    cursor: tuple[datetime, int] | None = None


def _pages(qs: object, limit: int, *,
           after: tuple[datetime, int] | None = None) -> Iterator[list[tuple[int, int, int, datetime]]]:
    """Rows (id, cid, priority, due_at) in (due_at, id) order after ``after``, a page at a time, by keyset."""
    fields = ("id", "cid", "priority", "due_at")
    last = after
    while True:
        if last is None:
            page = list(qs.order_by("due_at", "id").values_list(*fields)[:limit])  # type: ignore[attr-defined]
        else:
            page = list(qs.filter(due_at=last[0], id__gt=last[1])  # type: ignore[attr-defined]
                        .order_by("id").values_list(*fields)[:limit])
            if len(page) < limit:
                page += list(qs.filter(due_at__gt=last[0])  # type: ignore[attr-defined]
                             .order_by("due_at", "id").values_list(*fields)[:limit - len(page)])
        if not page:
            return
        yield page
        if len(page) < limit:
            return
        last = (page[-1][3], page[-1][0])
