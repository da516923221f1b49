"""What a worker holds: the jobs it claimed and has not yet settled, shared by its threads under one lock.

A held job moves ``queued`` (claimed, waiting for a slot) → ``running`` → ``finished`` (its outcome waits for the
committer), or is taken out of that path: ``released`` (handed back) or ``timed_out`` (over its hard limit).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from .context import JobContext
from .registry import Task

QUEUED, RUNNING, FINISHED, RELEASED, TIMED_OUT = "queued", "running", "finished", "released", "timed_out"


@dataclass(slots=True, eq=False)
class Held:
    """A job this worker claimed and has not yet committed."""

    ctx: JobContext
    task: Task
    state: str = QUEUED
    queued_at: float = field(default_factory=time.monotonic)
    proven: float = field(default_factory=time.monotonic)  # when its lease was last known to be ours
    started: float = 0.0
    recorded: bool = False  # its outcome's commit ran (won or lost): a retried batch does not commit it again


class Holdings:
    """The held jobs by (task, id) — ids are unique per job table only, and tasks may have tables of their own
    (tables.py); every read or change of a job's ``state`` happens under ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[tuple[str, int], Held] = {}

    def add(self, held: Held) -> None:
        with self.lock:
            self.jobs[(held.task.name, held.ctx.id)] = held

    def get(self, task: str, job_id: int) -> Held | None:
        return self.jobs.get((task, job_id))

    def discard(self, items: list[Held]) -> None:
        """Forget these (only the very objects: a job claimed again since is another Held)."""
        with self.lock:
            for held in items:
                if self.jobs.get((held.task.name, held.ctx.id)) is held:
                    del self.jobs[(held.task.name, held.ctx.id)]

    def in_state(self, *states: str) -> list[Held]:
        with self.lock:
            return [h for h in self.jobs.values() if h.state in states]

    def count(self, *states: str) -> int:
        with self.lock:
            return sum(1 for h in self.jobs.values() if h.state in states)

    def take(self, state: str, new_state: str) -> list[Held]:
        """Atomically move every job in ``state`` to ``new_state``; returns them."""
        with self.lock:
            items = [h for h in self.jobs.values() if h.state == state]
            for h in items:
                h.state = new_state
            return items
