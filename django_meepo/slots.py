"""Per-task run slots of one worker: each task's ``parallel`` bounds its own running jobs.

A worker runs ``capacity`` executor threads (``--parallel``, by default the sum of its tasks' ``parallel``). Each
task has its own limit, ``min(parallel, capacity)``: an executor takes a claimed job only of a task below its
limit, so a worker consuming ``a`` (parallel 1) and ``b`` (parallel 8) never runs two ``a`` jobs at once. A job of
a task at its limit waits in the worker's hand — claimed, its lease renewed, no attempt counted — without
blocking the jobs of other tasks: executors take the tasks in turn, so a backlog of one never starves another.

The fetch side (``Worker._rooms``) asks each task only for what its own limit and prefetch leave room for, so a
task at its limit does not fill the worker's hand either. What waits too long is handed back (``waiting.py``).

Nothing here touches the database: a crash loses only memory, and the claimed jobs' leases expire as usual.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .holdings import Held


class Slots:
    """Claimed jobs waiting for a run slot, one queue per task, and each task's running count (thread-safe)."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        bad = {name: n for name, n in limits.items() if n < 1}
        if bad:
            raise ValueError(f"every task needs at least one run slot, not {bad}")
        self.limits = dict(limits)
        self._cond = threading.Condition()
        self._waiting: dict[str, deque[Held]] = {name: deque() for name in limits}
        self._running = dict.fromkeys(limits, 0)
        self._order = list(limits)
        self._turn = 0
        self._closed = False

    def put(self, held: Held) -> None:
        """Queue a claimed job for a slot of its task."""
        with self._cond:
            self._waiting[held.task.name].append(held)
            self._cond.notify()

    def take(self) -> Held | None:
        """Block until a job of a task below its limit waits, reserve that task's slot and return the job (the
        caller must :meth:`done` it, whatever happens next); None once :meth:`close` was called. Tasks are
        taken in turn, beginning after the one taken last."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                held = self._next()
                if held is not None:
                    self._running[held.task.name] += 1
                    return held
                self._cond.wait()

    def _next(self) -> Held | None:
        n = len(self._order)
        for i in range(n):
            name = self._order[(self._turn + i) % n]
            if self._waiting[name] and self._running[name] < self.limits[name]:
                self._turn = (self._turn + i + 1) % n
                return self._waiting[name].popleft()
        return None

    def done(self, task: str) -> None:
        """Free a slot of ``task`` reserved by :meth:`take`.

        The caller (an executor) takes its next job itself; another waiting executor is woken only when a job of
        ``task`` waits (the one job the freed slot made eligible, in case the caller takes another task's)."""
        with self._cond:
            self._running[task] -= 1
            if self._waiting[task]:
                self._cond.notify()

    def running(self, task: str) -> int:
        with self._cond:
            return self._running[task]

    def at_limit(self, task: str) -> bool:
        """True while every slot of ``task`` runs a job."""
        with self._cond:
            return self._running[task] >= self.limits[task]

    def close(self) -> None:
        """Wake every executor: :meth:`take` returns None from now on (jobs still queued were handed back)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
