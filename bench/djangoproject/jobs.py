"""django-meepo job functions of the benchmark (autodiscovered: the ``jobs`` module of an installed app)."""

from __future__ import annotations

from bench.recorder import record
from django_meepo import JobContext, task

from . import MEEPO_LATENCY, MEEPO_NOOP


@task(MEEPO_NOOP)
def noop(job: JobContext) -> None:
    """A no-op job: records that it ran (its payload is its number)."""
    record(int(job.payload))


@task(MEEPO_LATENCY)
def latency(job: JobContext) -> None:
    """Records when it started, under its job id, for the pickup latency."""
    record(job.id, start=True)
