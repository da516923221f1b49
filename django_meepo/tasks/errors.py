"""Exceptions named in a TaskResult's errors (``TaskError.exception_class_path``) or raised by a queue's job
function. Each docstring is its default message."""

from __future__ import annotations

from ..exceptions import MeepoError


class TaskJobError(MeepoError):
    """A Django Task job cannot run."""


class NotATask(TaskJobError):
    """The job names an object that is not a Django Task; it is never called."""


class TaskNotFound(TaskJobError, ImportError):
    """The Django Task the job names does not import (renamed, removed, or not deployed on this worker yet)."""


class MalformedTaskJob(TaskJobError, ValueError):
    """The job's payload is not a Django Task job's."""


class WorkerLost(Exception):
    """The attempt's worker stopped renewing its lease (killed, hung or cut off); the sweeper took the job back."""


class TimeLimitExceeded(Exception):
    """The attempt ran past its queue's hard time limit (TIME_LIMIT); its lease was given up."""


class Cancelled(Exception):
    """The job was cancelled by an operator (``api.cancel``, the admin, ``meepo_cancel``) before it finished."""


class RecordedTaskError(Exception):
    """A failed Task's recorded error (the text is its traceback), raised only so that ``task_finished`` is sent
    while it is being handled: a receiver that logs with ``exc_info`` — Django's own calls ``logger.exception``
    for a FAILED result — prints the Task's traceback instead of ``NoneType: None``."""
