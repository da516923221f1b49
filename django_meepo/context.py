"""What a job function receives: the job (id, failed times, cid, payload) and a way to commit and heartbeat.

```python
@django_meepo.task("resize")
def resize(job: JobContext) -> None:
    image_id = job.json()["image_id"]
    for chunk in work(image_id):
        if job.cancelled:       # an operator cancelled it (seen at the next heartbeat): its commit is refused
            return
        if job.stopping:        # shutdown, lost lease or time limit: stop early, the job runs again later
            return
        job.heartbeat()         # optional: the worker renews leases on its own every HEARTBEAT seconds
        job.progress(chunk.number, chunk.count, note="resizing")  # throttled: one write per PROGRESS_INTERVAL
    if not ready(image_id):
        job.snooze(30)          # back to todo, due in 30 s; no failure counted; then return
```
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .exceptions import CommitNotAllowed
from .options import TaskOptions
from .progress import Throttle, validate
from .statemachine import ClaimedJob, Transition


@dataclass(slots=True, eq=False)
class JobContext:
    """One run of one job, as its function sees it."""

    job: ClaimedJob
    _commit: Callable[[JobContext, str], Transition]
    _heartbeat: Callable[[JobContext], None]
    stop_event: threading.Event = field(default_factory=threading.Event)
    committed: Transition | None = None
    lease_lost: bool = False
    # Set (before stop_event) when this run's lease was lost because an operator cancelled the job (see
    # monitor.lease_lost): the run is fenced, its commit will be refused, and it may stop at once.
    cancelled: bool = False
    timed_out: bool = False
    # Set by a job function to give this run's failure another retry policy than its task's (max_failed_times,
    # retry_backoff, ...): the Django Tasks backend applies a Task's own max_attempts and backoff this way.
    retry_options: TaskOptions | None = None
    # Given by the worker: the snooze verb, and the throttle of this run's progress reports (see progress.py).
    _snooze: Callable[[JobContext, float], Transition] | None = None
    _progress: Throttle | None = None

    @property
    def id(self) -> int:
        return self.job.id

    @property
    def task(self) -> str:
        return self.job.task

    @property
    def cid(self) -> int:
        """The cid of this run's claim; a commit with it fails once the job moved on."""
        return self.job.cid

    @property
    def failed_times(self) -> int:
        return self.job.failed_times

    @property
    def attempt(self) -> int:
        """1 for the first run, 2 for the second, ..."""
        return self.job.attempts

    @property
    def payload(self) -> bytes:
        return self.job.payload

    @property
    def priority(self) -> int:
        return self.job.priority

    def json(self) -> Any:
        """The payload decoded as JSON (pushed with ``json=``)."""
        return json.loads(self.job.payload)

    @property
    def stopping(self) -> bool:
        """True when the job should stop early: the worker is shutting down, lost the lease (the job was cancelled,
        repushed or rescued) or hit the limit."""
        return self.stop_event.is_set()

    def commit(self, status: str) -> Transition:
        """Manual mode only: commit ``done``, ``failed`` or ``todo`` with this run's cid (CommitConflict if stale).

        A progress report still waiting for its write is written first (the commit ends the claim)."""
        self.flush_progress()
        result = self._commit(self, status)
        self.committed = result
        return result

    def snooze(self, seconds: float) -> Transition:
        """Put this run off: the job goes back to ``todo``, due ``seconds`` from now, no failure counted.

        The run is over once this returns: the worker records nothing for it (return soon; what the function
        does afterwards is not recorded, and an exception it then raises is logged only). Works in auto-commit
        and manual mode. ValueError for seconds that are not a finite number >= 0 (nothing written);
        CommitConflict, naming the job's state, when this run no longer holds the job (its lease was lost, or
        it committed or snoozed already). See ``statemachine.snooze``."""
        if self._snooze is None:
            raise CommitNotAllowed(f"job {self.id} is not running in a worker: it cannot be snoozed")
        self.flush_progress()
        result = self._snooze(self, seconds)
        self.committed = result
        return result

    def progress(self, done: int, total: int, note: str = "") -> None:
        """Report ``done`` of ``total`` (whole numbers, 0 <= done <= total) and a short note (cut to 200 chars).

        Written to the job's row at most once per ``MEEPO["PROGRESS_INTERVAL"]`` seconds (default 1); the last
        report is written when the run ends. ValueError naming a bad value (nothing kept). A database that
        cannot be reached is logged, never raised here. See progress.py."""
        value = validate(done, total, note)
        if self._progress is None:
            raise CommitNotAllowed(f"job {self.id} is not running in a worker: it cannot report progress")
        self._progress.report(value)

    def flush_progress(self) -> None:
        """Write a progress report that waits for its turn, now (the worker calls it when the run ends)."""
        if self._progress is not None:
            self._progress.flush()

    def heartbeat(self) -> None:
        """Renew this job's lease now (the worker also renews it every HEARTBEAT seconds while it runs)."""
        self._heartbeat(self)
