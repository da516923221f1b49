"""django-meepo job functions of the benchmark (autodiscovered: the ``jobs`` module of an installed app)."""

from __future__ import annotations

from bench.recorder import record
from django_meepo import JobContext, task

from . import MEEPO_CONCURRENCY, MEEPO_LATENCY, MEEPO_NOOP, MEEPO_RATE


@task(MEEPO_NOOP)
def noop(job: JobContext) -> None:
    """A no-op job: records that it ran (its payload is its number)."""
    record(int(job.payload))


@task(MEEPO_CONCURRENCY, concurrency=10_000)
def noop_concurrency(job: JobContext) -> None:
    """bench_noop under a global concurrency limit that never binds: what the flow lock and count cost."""
    record(int(job.payload))


@task(MEEPO_RATE, rate="1000000/s")
def noop_rate(job: JobContext) -> None:
    """bench_noop under a rate limit that never binds: what the token bucket in Redis costs."""
    record(int(job.payload))


@task(MEEPO_LATENCY)
def latency(job: JobContext) -> None:
    """Records when it started, under its job id, for the pickup latency."""
    record(job.id, start=True)
