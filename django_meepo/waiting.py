"""Jobs a worker claimed that wait in its queue for a slot (prefetched): proven before they start, and handed
back when a slot does not come.

* **Proven before they start.** A job that waited may have been repushed, rescued or committed by an operator
  meanwhile; its lease is then lost and a newer copy may run elsewhere. An executor asks :meth:`Waiting.start`
  before it runs a job: a job whose lease was last proven more than :data:`PROOF_AGE` seconds ago is proven
  again — in one statement with every other waiting job as old, so a deep queue costs a few statements a second,
  not one per job — and a job whose lease is lost never starts.
* **Handed back when held hostage.** With no slot that could take a job finishing one for longer than expected (a
  job hangs), waiting jobs would keep their leases renewed for as long as it hangs while other workers idle. The
  clock is per task (``slots.py``): a job of a task at its ``parallel`` limit waits for a job *of its task* to
  finish; a job of a task below its limit waits for any thread. A job that waited past
  ``max(HOSTAGE_MIN, HOSTAGE_FACTOR × max_wait)`` seconds while its clock did not move is handed back (``todo``,
  due now, no failure counted) for another worker, and the worker stops prefetching that task until one of its
  jobs finishes. A hang in one task never hands back another's jobs.

The adversary's view: a proof whose answer is lost is settled by its effect (``extend_leases``); a proof that
cannot reach the database is tried again (with a growing pause, up to :data:`PROOF_RETRY_MAX` seconds) until it
answers or the worker stops: a job never starts unproven — had it been repushed meanwhile, its old copy would
run beside the new one. While the database is away the job could not be committed anyway; when it is back,
the proof says whether the lease is still ours (if the sweeper rescued it meanwhile, the job does not start).
A hand-back that races an executor is decided under the holdings' lock: the job either starts or is
handed back, never both.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from django.db import Error

from . import statemachine as sm
from .db import discard_connection
from .holdings import QUEUED, RELEASED, Held, Holdings
from .monitor import lease_lost
from .registry import Task

log = logging.getLogger(__name__)

PROOF_AGE = 0.25
PROOF_RETRY_MAX = 2.0  # the longest pause between proofs while the database does not answer
HOSTAGE_MIN = 5.0  # well above a pause of a loaded machine: a healthy queue is never handed back
HOSTAGE_FACTOR = 5.0


class Waiting:
    def __init__(self, holdings: Holdings, tasks: dict[str, Task], *, worker_id: str, using: str,
                 max_wait: float, at_limit: Callable[[str], bool] = lambda task: False,
                 stop: threading.Event | None = None) -> None:
        self.holdings = holdings
        self.stop = stop or threading.Event()  # set when the worker stops: a job still unproven does not start
        self.at_limit = at_limit  # whether a task runs as many jobs as its parallel allows
        self.tasks = tasks
        self.worker_id = worker_id
        self.using = using
        self.hostage_after = max(HOSTAGE_MIN, HOSTAGE_FACTOR * max_wait)
        self._proving = threading.Lock()
        started = time.monotonic()
        self._last_finish = started  # when any slot last finished a job (or the worker started)
        self._task_finish = dict.fromkeys(tasks, started)  # the same, per task

    def finished(self, task: str) -> None:
        """A slot of ``task`` finished a job: the queue is moving."""
        self._last_finish = self._task_finish[task] = time.monotonic()

    def _stuck(self, task: str, now: float) -> bool:
        """True when nothing that could start a waiting job of ``task`` finished within :attr:`hostage_after`:
        its own jobs while it is at its limit, any job while it is not."""
        if self.at_limit(task):
            return now - self._task_finish[task] > self.hostage_after
        return now - self._last_finish > self.hostage_after

    def start(self, held: Held) -> bool:
        """True if ``held`` may start now: its lease is (freshly) known to be this worker's. False if its lease
        was lost, or the worker stopped while the database did not answer the proof (the job is then not run:
        the stop hands it back, or its lease lapses and the sweeper rescues it)."""
        pause = PROOF_AGE
        while True:
            if held.ctx.lease_lost:
                return False
            if time.monotonic() - held.proven < PROOF_AGE:
                return True
            with self._proving:  # one proof at a time: the others find their job proven by it
                now = time.monotonic()
                if now - held.proven < PROOF_AGE:
                    return not held.ctx.lease_lost
                stale = [h for h in self.holdings.in_state(QUEUED) if now - h.proven >= PROOF_AGE]
                unanswered = self._prove([held, *[h for h in stale if h is not held]], now)
            if held.task.name not in unanswered:
                return not held.ctx.lease_lost
            if self.stop.wait(pause):
                return False
            pause = min(pause * 2, PROOF_RETRY_MAX)

    def _prove(self, items: list[Held], now: float) -> set[str]:
        """Renew the leases of ``items`` (one statement per task); returns the tasks whose statement raised."""
        by_task: dict[str, list[Held]] = defaultdict(list)
        for h in items:
            by_task[h.task.name].append(h)
        unanswered: set[str] = set()
        for name, group in by_task.items():
            try:
                lost = sm.extend_leases([h.ctx.job.ref for h in group],
                                        lease_seconds=self.tasks[name].options.lease_timeout, using=self.using,
                                        task=name)
            except Error as exc:
                log.warning("meepo: could not prove the leases of %d waiting %s job(s) (%s); they wait until the "
                            "database answers", len(group), name, exc)
                discard_connection(self.using)
                unanswered.add(name)
                continue
            for h in group:
                if h.ctx.id in lost:
                    lease_lost(h.ctx)
                else:
                    h.proven = now
        return unanswered

    def release_hostages(self) -> set[str]:
        """Hand back the jobs that waited longer than :attr:`hostage_after` seconds while their task's clock did
        not move (see :meth:`_stuck`); the names of the tasks whose jobs were."""
        now = time.monotonic()
        stuck = {name for name in self.tasks if self._stuck(name, now)}
        if not stuck:
            return set()  # the slots are finishing jobs: a long queue is a queue, not hostages
        with self.holdings.lock:
            items = [h for h in self.holdings.jobs.values()
                     if h.state == QUEUED and h.task.name in stuck and now - h.queued_at > self.hostage_after]
            for h in items:
                h.state = RELEASED
        if not items:
            return set()
        by_task: dict[str, list[Held]] = defaultdict(list)
        for h in items:
            by_task[h.task.name].append(h)
        for name, group in by_task.items():
            reason = (f"waited over {self.hostage_after:g} s in worker {self.worker_id}'s queue while every slot "
                      f"was busy; handed back for another worker")
            try:
                changed = sm.release(name, [h.ctx.job for h in group], worker=self.worker_id, using=self.using,
                                     reason=reason)
            except Error as exc:  # still this worker's: queued again, renewed, and handed back at the next try
                log.warning("meepo: could not hand back %d waiting %s job(s) (%s); keeping them", len(group), name,
                            exc)
                with self.holdings.lock:
                    for h in group:
                        if h.state == RELEASED:
                            h.state = QUEUED
                items = [h for h in items if h not in group]
                continue
            log.warning("meepo: handed back %d %s job(s): %s", len(changed), name, reason, extra={"task": name})
        self.holdings.discard(items)
        return {h.task.name for h in items}
