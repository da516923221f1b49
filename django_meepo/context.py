"""What a job function receives: the job (id, failed times, cid, payload) and a way to commit and heartbeat.

```python
@django_meepo.task("resize")
def resize(job: JobContext) -> None:
    image_id = job.json()["image_id"]
    for chunk in work(image_id):
        if job.stopping:        # shutdown, lost lease or time limit: stop early, the job runs again later
            return
        job.heartbeat()         # optional: the worker renews leases on its own every HEARTBEAT seconds
```
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .options import TaskOptions
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
    timed_out: bool = False
    # Set by a job function to give this run's failure another retry policy than its task's (max_failed_times,
    # retry_backoff, ...): the Django Tasks backend applies a Task's own max_attempts and backoff this way.
    retry_options: TaskOptions | None = None

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
        """True when the job should stop early: the worker is shutting down, lost the lease or hit the limit."""
        return self.stop_event.is_set()

    def commit(self, status: str) -> Transition:
        """Manual mode only: commit ``done``, ``failed`` or ``todo`` with this run's cid (CommitConflict if stale)."""
        result = self._commit(self, status)
        self.committed = result
        return result

    def heartbeat(self) -> None:
        """Renew this job's lease now (the worker also renews it every HEARTBEAT seconds while it runs)."""
        self._heartbeat(self)
