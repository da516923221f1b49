"""The consumer: fetches claimed jobs, runs them on ``parallel`` threads, commits, renews leases.

Threads of one worker process:

* the **main loop** (``run``) fetches, per task, as many jobs as that task has free run slots (+ its
  ``PREFETCH``), skipping paused tasks (``pauses.py``), each already claimed (``doing``, cid + 1, a lease) before
  it runs, and waits for a dispatch notification when idle;
* **executors** (``--parallel`` threads) run job functions, one job at a time each, a task's job only while the
  task has fewer than its ``parallel`` running (``slots.py``), and clean their database connections in between;
* the **committer** records outcomes: ``done`` commits of many jobs in one statement, failures one by one;
* the **monitor** renews the leases of every job held, reports the worker alive, and enforces hard time limits;
* the **sweeper** (unless turned off) — see ``sweeper.py``.

Stopping (``request_stop``, SIGTERM in ``meepo_consume``): no new fetches; jobs not started are handed back at
once; running jobs get ``grace`` seconds to finish, then are handed back too. ``run`` returns ``"stopped"``, or
``"recycle"`` when the worker should be replaced (``max_jobs``, ``max_memory_mb`` or a job over its time limit
— a Python thread cannot be killed, so the process is replaced).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

from django.db import DatabaseError, Error, InterfaceError, connections

from . import metrics
from . import statemachine as sm
from .checked import held_by
from .clock import db_now
from .committer import Committer
from .conf import get_settings
from .context import JobContext
from .db import clean_connections, close_thread_connections, discard_connection
from .dispatch import Dispatcher, give_back_fetch_dispatcher, take_fetch_dispatcher
from .dispatch.base import Source
from .exceptions import DispatchError
from .execution import run_job
from .holdings import FINISHED, QUEUED, RELEASED, RUNNING, Held, Holdings
from .limits import worker_flow
from .models import Worker as WorkerRow
from .monitor import Monitor, lease_lost
from .pauses import PausedSet
from .progress import Progress, Throttle
from .registry import Task, all_tasks
from .slots import Slots
from .sweeper import Sweeper, source_of
from .waiting import Waiting

log = logging.getLogger(__name__)

STOPPED, RECYCLE = "stopped", "recycle"
MAX_PREFETCH = 1000
MAX_WAIT = 1.0


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Worker:
    def __init__(self, tasks: Sequence[Task], *, parallel: int | None = None, using: str | None = None,
                 sweep: bool = True, max_jobs: int | None = None, max_memory_mb: float | None = None,
                 grace: float = 30.0, dispatcher_factory: Callable[[], Dispatcher] | None = None,
                 worker_id: str | None = None) -> None:
        if not tasks:
            raise ValueError("a worker needs at least one task")
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.tasks = {t.name: t for t in tasks}
        self.sources = [source_of(t) for t in tasks]
        self.capacity = parallel or sum(t.options.parallel for t in tasks)
        # Each task's own run slots: its parallel, at most the threads there are (slots.py).
        self.limits = {t.name: min(t.options.parallel, self.capacity) for t in tasks}
        self.slots = Slots(self.limits)
        # A claimed job should not wait in memory longer than this (a small share of the shortest lease).
        self.max_wait = min(MAX_WAIT, min(t.options.lease_timeout for t in tasks) / 10)
        # Moving average of each task's job run time, for its adaptive prefetch.
        self.avg_seconds: dict[str, float] = {}
        self.paused = PausedSet(list(self.tasks), using=using or get_settings().database)
        self.using = using or get_settings().database
        self.flow = worker_flow(tasks, using=self.using)  # global concurrency and rate limits (limits.py)
        self.sweep = sweep
        self.max_jobs = max_jobs
        self.max_memory_mb = max_memory_mb
        self.grace = grace
        self.progress_interval = get_settings().progress_interval
        # By default the process's own dispatcher, shared with the outbox (one breaker), if no other worker of
        # this process fetches through it.
        self.dispatcher, self._owns_process_dispatcher = (
            (dispatcher_factory(), False) if dispatcher_factory else take_fetch_dispatcher(self))
        self.sweeper: Sweeper | None = None
        self.holdings = Holdings()
        self.committer = Committer(self.holdings, worker_id=self.id, using=self.using)
        self.monitor = Monitor(self.holdings, self.tasks, using=self.using, committer=self.committer,
                               recycle=self._recycle, report=self._report)
        self._stop = threading.Event()
        self.waiting = Waiting(self.holdings, self.tasks, worker_id=self.id, using=self.using,
                               max_wait=self.max_wait, at_limit=self.slots.at_limit, stop=self._stop)
        self._prefetch_suspended: set[str] = set()  # tasks whose hostages were handed back, until one finishes
        self.abandoned = 0  # running jobs handed back at the stop, whose threads still run
        self._slot_free = threading.Event()
        self._monitor_stop = threading.Event()
        self._sweep_stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._fetched = 0
        self.recycle_reason: str | None = None
        self.stop_requested = False  # by a signal or a caller: the process then exits, it is never replaced
        self._outage_logged = False

    @property
    def processed(self) -> int:
        return self.committer.processed

    @property
    def failed(self) -> int:
        return self.committer.failed

    # ---------------------------------------------------------------------------------------- control
    def request_stop(self) -> None:
        """Stop taking jobs; let running ones finish within the grace period (thread-safe, signal-safe).

        Wins over a pending recycle: a worker asked to stop while it was being replaced exits instead."""
        self.stop_requested = True
        self._stop.set()

    def _recycle(self, reason: str) -> None:
        if self.recycle_reason is None:
            self.recycle_reason = reason
            log.warning("meepo: worker %s will be replaced: %s", self.id, reason)
        self._stop.set()

    def run(self) -> str:
        log.info("meepo: worker %s consuming %s with %d thread(s)", self.id,
                 ", ".join(f"{name} (at most {n} at once)" for name, n in self.limits.items()), self.capacity)
        self._start()
        try:
            with metrics.worker_running(self):  # its slots in meepo_worker_slots while it runs
                self._loop()
        finally:
            self._drain()
        return RECYCLE if self.recycle_reason and not self.stop_requested else STOPPED

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"meepo-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start(self) -> None:
        self._register()
        for n in range(self.capacity):
            self._spawn(self._execute_loop, f"exec-{n}")
        self._spawn(self.committer.run, "commit")
        self._spawn(lambda: self.monitor.run(self._monitor_stop), "monitor")
        if self.sweep:
            self.sweeper = sweeper = Sweeper(all_tasks() or list(self.tasks.values()), dispatcher=self.dispatcher,
                                             using=self.using, holder=self.id)
            self._spawn(lambda: sweeper.run(self._sweep_stop), "sweeper")

    # ---------------------------------------------------------------------------------------- fetching
    def _in_hand(self) -> int:
        return self.holdings.count(QUEUED, RUNNING)

    def prefetch(self, task: Task) -> int:
        """Jobs of ``task`` to claim beyond its free slots: its PREFETCH if set, else as many as its slots finish
        within ``max_wait`` seconds at its measured job duration (none until one was measured), at most 1,000;
        none while its hostages were handed back and none of its jobs finished since."""
        if task.name in self._prefetch_suspended:
            return 0
        if task.options.prefetch is None and (task.options.rate or task.options.key_rate):
            return 0  # a rate limit counts claims: a claimed job starts at once, never bunched up after a wait
        if task.options.prefetch is not None:
            return task.options.prefetch
        avg = self.avg_seconds.get(task.name)
        if avg is None:
            return 0
        limit = self.limits[task.name]
        return min(MAX_PREFETCH, limit * 100, int(limit * self.max_wait / max(avg, 1e-6)))

    def _free(self) -> tuple[int, dict[str, int]]:
        """How many jobs to fetch now in all, and of each task (its room).

        A task's room is its free slots plus its prefetch, less what it holds (queued or running); a task gets
        none until that is at least half of its prefetch (at least 1), and none while it is paused. The total is
        at most the sum of the rooms, the threads plus the prefetch less all that is held, and what ``max_jobs``
        leaves. One pass over the holdings under their lock and a cached read of the paused set: no database
        round trip of its own (the paused set is read at most once a second)."""
        with self.holdings.lock:
            held = Counter(h.task.name for h in self.holdings.jobs.values() if h.state in (QUEUED, RUNNING))
        paused = self.paused.get() | self.flow.held()
        rooms: dict[str, int] = {}
        total_prefetch = 0
        for name, task in self.tasks.items():
            prefetch = self.prefetch(task)
            total_prefetch += prefetch
            room = self.limits[name] + prefetch - held[name]
            if name not in paused and room >= max(1, prefetch // 2):
                rooms[name] = room
        if not rooms:
            return 0, rooms
        free = min(sum(rooms.values()), self.capacity + total_prefetch - sum(held.values()))
        if self.max_jobs is not None:
            free = min(free, self.max_jobs - self._fetched)
        return free, rooms

    def _loop(self) -> None:
        alive_at = float("-inf")
        delay = 0.1
        while not self._stop.is_set():
            if time.monotonic() - alive_at >= 1.0:
                alive_at = time.monotonic()
                self._check_limits()
                try:
                    self._prefetch_suspended |= self.waiting.release_hostages()
                except Error as exc:  # the hand-back is tried again at the next second
                    log.warning("meepo: worker %s: could not hand back waiting jobs (%s)", self.id, exc)
                with contextlib.suppress(DispatchError):
                    self.dispatcher.heartbeat(self.id)
            self._slot_free.clear()
            free, rooms = self._free()
            if free <= 0:
                if self.max_jobs is not None and self._fetched >= self.max_jobs and self._in_hand() == 0:
                    self._recycle(f"processed its {self.max_jobs} jobs (--max-jobs)")
                    break
                self._slot_free.wait(self.flow.wake_in(0.5))  # a task held by a flow limit comes back sooner
                continue
            try:
                found, claimed = self._fetch(free, rooms)
                if not claimed and not found:
                    self.dispatcher.wait(self.sources, timeout=1.0)
            except DispatchError as exc:
                self._outage(f"dispatcher unavailable: {exc}")
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            except (DatabaseError, InterfaceError) as exc:
                self._outage(f"database unavailable: {exc}")
                discard_connection(self.using)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            if self._outage_logged:
                log.warning("meepo: worker %s: back to normal", self.id)
                self._outage_logged = False
            delay = 0.1

    def _outage(self, message: str) -> None:
        if not self._outage_logged:
            log.warning("meepo: worker %s: %s; retrying", self.id, message)
            self._outage_logged = True

    def _fetch(self, count: int, rooms: dict[str, int]) -> tuple[bool, int]:
        """Take and claim up to ``count`` jobs, at most ``rooms[task]`` of a task and none of a task not in
        ``rooms``; (whether entries were found, how many jobs were claimed).

        Each task's claimed jobs are held as soon as the transport delivers them, so a claim that raises for a
        later task (a deadlock, the database gone) never strands the jobs already claimed: they are queued to
        run (interleaved across tasks) before the error goes on to the loop."""
        delivered: list[sm.ClaimedJob] = []
        try:
            sources = [s for s in self.sources if s.task in rooms]
            found = self.dispatcher.fetch(sources, count, worker=self.id, claim=self._claim,
                                          deliver=delivered.extend, limits=rooms)
        finally:
            self._enqueue(delivered)
            self.flow.give_back(self.dispatcher)  # jobs a flow limit held back, after their entries' ack
        return found, len(delivered)

    def _claim(self, source: Source, refs: Sequence[sm.Ref]) -> list[sm.ClaimedJob]:
        """The state machine's claim of ``refs`` for this worker (given to the transport, which takes the ids)."""
        options = self.tasks[source.task].options
        refused: set[int] = set()
        if options.limited:
            won, refused = self.flow.claim(source.task, options, source.key_prefix, refs, worker=self.id,
                                           lease_seconds=source.lease_seconds)
        else:
            won = sm.claim(source.task, list(refs), worker=self.id, lease_seconds=source.lease_seconds,
                           using=self.using)
        # An entry handed out again (its earlier claim committed but the answer never arrived) no longer matches
        # its cid; if this worker owns it and does not hold it, it is delivered now rather than left 'doing'.
        won_ids = {j.id for j in won} | refused
        unsettled = [r for r in refs if r.id not in won_ids and self.holdings.get(source.task, r.id) is None]
        return won + (held_by(source.task, unsettled, worker=self.id, using=self.using) if unsettled else [])

    def _enqueue(self, jobs: Sequence[sm.ClaimedJob]) -> None:
        for job in jobs:
            ctx = JobContext(job=job, _commit=self._job_commit, _heartbeat=self._job_heartbeat,
                             _snooze=self._job_snooze)
            ctx._progress = self._throttle(ctx)
            held = Held(ctx=ctx, task=self.tasks[job.task])
            self.holdings.add(held)
            self._fetched += 1
            self.slots.put(held)

    def _check_limits(self) -> None:
        if self.max_memory_mb is not None and rss_mb() > self.max_memory_mb:
            self._recycle(f"memory {rss_mb():.0f} MB is over --max-memory {self.max_memory_mb:g} MB")

    # ---------------------------------------------------------------------------------------- executing
    def _execute_loop(self) -> None:
        try:
            while True:
                held = self.slots.take()  # a job of a task below its limit; that task's slot is now reserved
                if held is None:
                    return
                try:
                    self._execute(held)
                finally:
                    self.slots.done(held.task.name)
                    self._slot_free.set()
        finally:
            close_thread_connections()

    def _execute(self, held: Held) -> None:
        """Run one job taken from the slots (unless it was handed back or its lease lost while it waited) and
        queue its outcome for the committer."""
        if held.state != QUEUED:
            return
        if not self.waiting.start(held):  # its lease was lost while it waited: a newer copy may run
            self.holdings.discard([held])
            return
        with self.holdings.lock:
            if held.state != QUEUED:
                return
            held.state, held.started = RUNNING, time.monotonic()
        outcome = run_job(held.task, held.ctx)
        held.ctx.flush_progress()  # the last report, before the outcome ends the claim
        name = held.task.name
        elapsed = time.monotonic() - held.started
        avg = self.avg_seconds.get(name)
        self.avg_seconds[name] = elapsed if avg is None else avg * 0.9 + elapsed * 0.1
        with self.holdings.lock:
            if held.state == RUNNING:
                held.state = FINISHED
        self._prefetch_suspended.discard(name)
        self.waiting.finished(name)
        self.committer.put(held, outcome)
        clean_connections()

    def _job_commit(self, ctx: JobContext, status: str) -> sm.Transition:
        held = self.holdings.get(ctx.task, ctx.id)
        task = held.task if held else self.tasks[ctx.task]
        return sm.job_commit(ctx.task, ctx.job, status, task.options, worker=self.id, using=self.using)

    def _job_snooze(self, ctx: JobContext, seconds: float) -> sm.Transition:
        """The state machine's snooze of this run; the claim is then over, so the worker records nothing more for
        it (``Held.recorded``: the committer settles its outcome without a commit)."""
        result = sm.snooze(ctx.task, ctx.job, seconds, worker=self.id, using=self.using)
        held = self.holdings.get(ctx.task, ctx.id)
        if held is not None and held.ctx is ctx:
            held.recorded = True
        return result

    def _throttle(self, ctx: JobContext) -> Throttle:
        """The throttle of ``ctx``'s progress reports: written in the job's own thread, unless it is inside a
        transaction of its own (see progress.py); a write that finds the job moved on means the lease was lost."""
        def write(progress: Progress) -> bool:
            written = sm.write_progress(ctx.job.ref, progress, using=self.using, task=ctx.task)
            if not written and ctx.committed is None:
                lease_lost(ctx, self.using)
            return written

        def can_write() -> bool:
            connection = connections[self.using]
            return not connection.in_atomic_block and connection.get_autocommit()

        return Throttle(write, self.progress_interval, label=f"{ctx.task} job {ctx.id}", can_write=can_write)

    def _job_heartbeat(self, ctx: JobContext) -> None:
        task = self.tasks[ctx.task]
        lost = sm.extend_leases([ctx.job.ref], lease_seconds=task.options.lease_timeout, using=self.using,
                                task=ctx.task)
        if lost:
            lease_lost(ctx, self.using)

    def _register(self) -> None:
        now = db_now(self.using)
        try:
            WorkerRow.objects.using(self.using).update_or_create(
                id=self.id[:200], defaults=dict(hostname=socket.gethostname()[:200], pid=os.getpid(),
                                                tasks=",".join(self.tasks), parallel=self.capacity,
                                                started_at=now, last_seen=now))
        except DatabaseError as exc:
            log.warning("meepo: could not register worker %s (%s)", self.id, exc)

    def _report(self) -> None:
        WorkerRow.objects.using(self.using).filter(id=self.id[:200]).update(
            last_seen=db_now(self.using), processed=self.processed, failed=self.failed)

    # ---------------------------------------------------------------------------------------- stopping
    def _drain(self) -> None:
        log.info("meepo: worker %s stopping: handing back jobs not started, waiting up to %g s for running ones",
                 self.id, self.grace)
        for h in self.holdings.in_state(QUEUED, RUNNING, FINISHED):
            h.ctx.stop_event.set()
        not_started = self._hand_back(QUEUED, "the worker stopped before the job started")
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline:
            if not self.holdings.count(RUNNING):
                break
            time.sleep(0.05)
        # Jobs still running are handed back; their threads cannot be stopped, so the process should exit as
        # soon as the hand-back and the outcomes already queued are committed (``abandoned`` says so).
        self.abandoned = self._hand_back(RUNNING, f"the worker stopped and the job did not finish within "
                                                  f"{self.grace:g} s")
        self.slots.close()
        self.committer.stop()
        self._sweep_stop.set()
        for t in self._threads:
            if t.name in ("meepo-commit", "meepo-sweeper"):
                t.join(timeout=10 if t.name == "meepo-commit" else 5)
        self._monitor_stop.set()
        with contextlib.suppress(DatabaseError):
            WorkerRow.objects.using(self.using).filter(id=self.id[:200]).delete()
        self.dispatcher.worker_stopped(self.id)
        self.dispatcher.close()  # its subscription only: the outbox still dispatches through it
        if self._owns_process_dispatcher:
            give_back_fetch_dispatcher(self)
        close_thread_connections()
        log.info("meepo: worker %s stopped after %d job(s); handed back %d not started and %d still running",
                 self.id, self.processed, not_started, self.abandoned)

    def _hand_back(self, state: str, reason: str) -> int:
        """Hand back every held job in ``state``; how many there were."""
        items = self.holdings.take(state, RELEASED)
        by_task: dict[str, list[Held]] = defaultdict(list)
        for h in items:
            by_task[h.task.name].append(h)
        for name, group in by_task.items():
            try:
                changed = sm.release(name, [h.ctx.job for h in group], worker=self.id, using=self.using,
                                     reason=reason)
            except DatabaseError as exc:
                log.error("meepo: could not hand back %d %s job(s) (%s); their leases will expire", len(group),
                          name, exc)
                continue
            log.info("meepo: handed back %d %s job(s): %s", len(changed), name, reason)
        self.holdings.discard(items)
        return len(items)
