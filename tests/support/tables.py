"""The two places a task's jobs can be (tables.py): the shared ``meepo_job`` and a table of its own.

Suites that must hold on both take the ``jobs_table`` fixture (tests/conftest.py): its ``record`` and ``other``
are the names of two tasks with the same job function, whose jobs are in ``model``'s table — ``meepo_job`` for
``shared``, ``t_my_job_0831`` (``testproject.OwnJob``) for ``own``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django_meepo.models import AbstractAttempt, AbstractJob, Attempt, Job
from testproject.models import OwnAttempt, OwnJob


@dataclass(frozen=True, slots=True)
class JobsTable:
    name: str
    record: str
    other: str
    model: type[AbstractJob]
    attempt: type[AbstractAttempt]

    def __str__(self) -> str:
        return self.name


SHARED = JobsTable("shared", "record", "other", Job, Attempt)
OWN = JobsTable("own", "record_own", "other_own", OwnJob, OwnAttempt)
BOTH = [SHARED, OWN]
