"""django-meepo: a durable background-job queue for Django — fast through Redis, with the database as the truth.

Public API::

    from django_meepo import task, Job, JobContext, repush, commit, operator_commit

    @task("emails", max_failed_times=5)
    def send(job: JobContext) -> None: ...

    Job.objects.push("emails", json={"to": "a@example.com"})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .exceptions import (
    CommitConflict,
    CommitNotAllowed,
    ConfigurationError,
    DispatchError,
    InvalidJob,
    InvalidPayload,
    InvalidStatus,
    JobNotFound,
    MeepoError,
    ReturnedWithoutCommit,
    UnknownTask,
)
from .registry import Task, task
from .states import Status

if TYPE_CHECKING:
    from .context import JobContext
    from .models import Job
    from .schedule import periodic

__version__ = "0.1.0"

__all__ = [
    "CommitConflict",
    "CommitNotAllowed",
    "ConfigurationError",
    "DispatchError",
    "InvalidJob",
    "InvalidPayload",
    "InvalidStatus",
    "Job",
    "JobContext",
    "JobNotFound",
    "MeepoError",
    "ReturnedWithoutCommit",
    "Status",
    "Task",
    "UnknownTask",
    "cancel",
    "commit",
    "operator_commit",
    "periodic",
    "push",
    "push_many",
    "repush",
    "task",
]

_LAZY = {
    "Job": ("models", "Job"),
    "JobContext": ("context", "JobContext"),
    "cancel": ("api", "cancel"),
    "commit": ("api", "commit"),
    "operator_commit": ("api", "operator_commit"),
    "repush": ("api", "repush"),
    "push": ("push", "push"),
    "push_many": ("push", "push_many"),
    "periodic": ("schedule", "periodic"),
}


def __getattr__(name: str) -> Any:
    """Model-dependent names load on first use, so importing the package never needs the app registry."""
    if name in _LAZY:
        from importlib import import_module

        module, attr = _LAZY[name]
        return getattr(import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
