"""The exceptions django-meepo raises.

Every exception derives from :class:`MeepoError`. Each class's docstring is its default message, so
``raise UnknownTask()`` still says something useful; most call sites pass a message naming the culprit.
"""

from __future__ import annotations


class MeepoError(Exception):
    """django-meepo error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(MeepoError):
    """django-meepo is misconfigured; run `manage.py check` for details."""


class UnknownTask(MeepoError, LookupError):
    """No task of that name is declared (MEEPO["TASKS"] or the @task decorator)."""


class InvalidPayload(MeepoError, ValueError):
    """The payload is not valid for a job."""


class InvalidStatus(MeepoError, ValueError):
    """Not a job status (todo, doing, done, failed, zombie, cancelled)."""


class InvalidJob(MeepoError, ValueError):
    """The job reference (id or cid) is not valid."""


class JobNotFound(MeepoError, LookupError):
    """No job with that id exists."""


class CommitConflict(MeepoError):
    """The job changed since this cid was issued (repushed, rescued or committed elsewhere); nothing was written."""

    def __init__(self, message: str | None = None, *, job_id: int | None = None,
                 expected_cid: int | None = None, actual_cid: int | None = None,
                 actual_status: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.expected_cid = expected_cid
        self.actual_cid = actual_cid
        self.actual_status = actual_status


class CommitNotAllowed(MeepoError):
    """This commit is not allowed (auto-commit task, or a transition the state machine refuses)."""


class DispatchError(MeepoError):
    """The dispatcher (Redis) could not be reached."""


class DatabaseUnavailable(MeepoError):
    """The database could not be reached after several attempts."""


class ReturnedWithoutCommit(MeepoError):
    """A job function of a task with AUTO_COMMIT False returned without calling job.commit(): no commit was
    attempted, so the worker recorded the run as a failure."""
