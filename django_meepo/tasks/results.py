"""TaskResult from a Job row, as Django defines it, and :func:`describe` for readable views of a task job.

| django-meepo status | TaskResultStatus | note                                                            |
|---------------------|------------------|-----------------------------------------------------------------|
| todo                | READY            | enqueued, deferred, or waiting to be retried                    |
| doing               | RUNNING          | claimed by a worker, under a lease                              |
| done                | SUCCESSFUL       | the return value is ``Job.result`` (JSON)                       |
| failed              | FAILED           | attempts exhausted, or committed failed by an operator          |
| zombie              | FAILED           | lease expired and parked (ZOMBIE_STATUS "zombie"); repush: READY |
| cancelled           | FAILED           | cancelled by an operator: the last error is a ``Cancelled``      |

One attempt per claim: ``worker_ids[n-1]`` is the worker of attempt n, so ``attempts`` and
``TaskContext.attempt`` count every run, including runs cut short by a killed worker. ``errors`` holds one
``TaskError`` per attempt that failed (an exception, a lost lease, a time limit) in order; hand-backs at
shutdown are not failures.

Django's ``TaskResultStatus`` has no cancelled status (READY, RUNNING, FAILED, SUCCESSFUL in Django 6.0), so a
cancelled job is FAILED, finished when cancelled, and its last ``TaskError`` is
``django_meepo.tasks.errors.Cancelled`` with the cancel's note (who cancelled it, and why) as its traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..models import AbstractAttempt, AbstractJob, Attempt
from ..states import Status
from ..tables import for_model
from .errors import Cancelled, TimeLimitExceeded, WorkerLost
from .payload import TaskSpec

if TYPE_CHECKING:
    from .compat import Task, TaskResult

STATUS_NAMES: dict[str, str] = {Status.TODO: "READY", Status.DOING: "RUNNING", Status.DONE: "SUCCESSFUL",
                Status.FAILED: "FAILED", Status.ZOMBIE: "FAILED", Status.CANCELLED: "FAILED"}
CANCELLED_ERROR = f"{Cancelled.__module__}.{Cancelled.__qualname__}"
FAILED_OUTCOMES: dict[str, str | None] = {
    Attempt.Outcome.FAILED: None,
    Attempt.Outcome.LEASE_EXPIRED: f"{WorkerLost.__module__}.{WorkerLost.__qualname__}",
    Attempt.Outcome.TIME_LIMIT: f"{TimeLimitExceeded.__module__}.{TimeLimitExceeded.__qualname__}",
}


@dataclass(frozen=True, slots=True)
class History:
    """What the Attempt rows and the job say about its attempts."""

    worker_ids: list[str]
    errors: list[tuple[str, str]]  # (exception class path, traceback or message)
    first_started_at: datetime | None


def history(job: AbstractJob, using: str | None = None) -> History:
    rows = list(for_model(type(job)).attempts_of(using or job._state.db or "default", [job.id])
                .order_by("number", "id"))
    by_number: dict[int, AbstractAttempt] = {}
    errors: list[tuple[str, str]] = []
    for row in rows:
        by_number.setdefault(row.number, row)
        if row.outcome in FAILED_OUTCOMES:
            path = row.error_class if row.outcome == Attempt.Outcome.FAILED else FAILED_OUTCOMES[row.outcome]
            errors.append((path or "builtins.Exception", row.error))
    workers = []
    for number in range(1, job.attempts + 1):
        if number in by_number:
            workers.append(by_number[number].worker)
        else:
            workers.append(job.worker if number == job.attempts else "")
    first = by_number[1].started_at if 1 in by_number else (job.started_at if job.attempts == 1 else None)
    return History(worker_ids=workers, errors=errors, first_started_at=first or job.started_at)


def status_name(job: AbstractJob) -> str:
    return STATUS_NAMES.get(job.status, "FAILED")


def return_value(job: AbstractJob) -> Any:
    return json.loads(job.result) if job.status == Status.DONE and job.result is not None else None


NO_HISTORY = History(worker_ids=[], errors=[], first_started_at=None)


RESULT_ID_MAX = 64  # a TaskResult id fits in 64 characters (a task's name with its own table: 44 at most)


def result_id(job: AbstractJob) -> str:
    """A result's id: the job's id for a job of the shared table (as before per-task tables); ``task:id`` for a
    job in a table of its own, whose id is unique in that table only (``emails:123``)."""
    return str(job.id) if for_model(type(job)).shared else f"{job.task}:{job.id}"


def parse_result_id(text: str) -> tuple[str | None, int] | None:
    """``"123"`` → (None, 123); ``"emails:123"`` → ("emails", 123); None for anything else."""
    task, sep, digits = text.rpartition(":")
    if not (digits.isascii() and digits.isdigit() and 0 < len(digits) <= 19) or int(digits) == 0:
        return None
    if sep and (not task or len(text) > RESULT_ID_MAX):
        return None
    return (task if sep else None), int(digits)


def build(job: AbstractJob, spec: TaskSpec, task: Task, *, using: str | None = None,
          past: History | None = None) -> TaskResult:
    """The TaskResult of a Django Task job, with ``task`` as it was enqueued (queue, priority, run_after).

    ``past`` saves reading the Attempt rows when the caller knows them (:data:`NO_HISTORY` for a new job).
    """
    from .compat import TaskError, TaskResult, TaskResultStatus

    past = past if past is not None else history(job, using)
    status = TaskResultStatus[status_name(job)]
    finished = job.finished_at if job.status in (Status.DONE, Status.FAILED, Status.CANCELLED) else None
    if job.status == Status.ZOMBIE:
        finished = job.updated_at
    errors = list(past.errors)
    if job.status == Status.CANCELLED:
        errors.append((CANCELLED_ERROR, job.last_error or str(Cancelled.__doc__)))
    result: TaskResult = TaskResult(
        task=task.using(priority=job.priority, queue_name=job.task, run_after=spec.run_after, backend=spec.backend),
        id=result_id(job), status=status, enqueued_at=job.created_at,
        started_at=past.first_started_at if job.attempts else None,
        last_attempted_at=job.started_at if job.attempts else None, finished_at=finished,
        args=spec.args, kwargs=spec.kwargs, backend=spec.backend,
        errors=[TaskError(exception_class_path=p, traceback=t) for p, t in errors],
        worker_ids=list(past.worker_ids))
    object.__setattr__(result, "_return_value", return_value(job))
    return result


def describe(job: AbstractJob) -> dict[str, Any] | None:
    """A Django Task job, readably (for the admin and commands); None when ``job`` is not one.

    Keys: ``task`` (the Task's import path), ``backend``, ``queue``, ``args``, ``kwargs``, ``status`` (Django's
    name), ``return_value`` (when SUCCESSFUL, else None), ``run_after``, ``max_attempts``, ``retry_backoff``.
    Reads the payload only: nothing is imported or run.
    """
    spec = TaskSpec.parse(job.payload_bytes)
    if spec is None:
        return None
    try:
        value = return_value(job)
    except ValueError:
        value = job.result
    return {"task": spec.path, "backend": spec.backend, "queue": job.task, "args": spec.args,
            "kwargs": spec.kwargs, "status": status_name(job), "return_value": value, "run_after": spec.run_after,
            "max_attempts": spec.max_attempts, "retry_backoff": spec.retry_backoff}
