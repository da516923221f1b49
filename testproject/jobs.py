"""Job functions of the demo and of the test suite (autodiscovered: ``MEEPO["AUTODISCOVER"]`` = ["jobs"])."""

from __future__ import annotations

import hashlib
import os
import time

from django_meepo import JobContext, task

from .models import Run

# Short leases and sweeps so that fault tests finish in seconds.
FAST = {"lease_timeout": 3, "heartbeat": 1, "sweep_period": 1, "retry_backoff": 0.2, "retry_jitter": False}


def demo(job: JobContext) -> str:
    """The demo's job: hash the payload a few thousand times (a stand-in for real work)."""
    digest = job.payload
    for _ in range(2000):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()[:16]


def _record(job: JobContext) -> Run:
    return Run.objects.create(job_id=job.id, task=job.task, cid=job.cid, attempt=job.attempt, pid=os.getpid())


def _work(job: JobContext) -> None:
    spec = job.json() if job.payload else {}
    run = _record(job)
    seconds = float(spec.get("sleep", 0))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if spec.get("stop_early") and job.stopping:
            return
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    if spec.get("fail") or job.attempt < int(spec.get("fail_until", 0)):
        raise RuntimeError(f"planned failure of job {job.id} on attempt {job.attempt}")
    Run.objects.filter(id=run.id).update(finished=True)


@task("record", parallel=4, max_failed_times=3, **FAST)
def record(job: JobContext) -> None:
    """Records each run in testproject_run; payload {"sleep": s, "fail": bool, "fail_until": attempt}."""
    _work(job)


# The same job function on a table of its own (tables.py): the suites run against both (tests/support/tables.py).
record_own = task("record_own", model="testproject.OwnJob", parallel=4, max_failed_times=3, **FAST)(record.function)
other_own = task("other_own", model="testproject.OwnJob", parallel=2, **FAST)(record.function)


@task("other", parallel=2, **FAST)
def other(job: JobContext) -> None:
    _work(job)


@task("manual", auto_commit=False, max_failed_times=3, **FAST)
def manual(job: JobContext) -> None:
    """Manual commit: payload {"commit": "done"|"failed"|"todo", "then": status on later attempts} or
    {"commit": null} (forgets to commit)."""
    spec = job.json()
    _record(job)
    status = spec.get("then") if job.attempt > 1 and spec.get("then") else spec.get("commit")
    if status:
        job.commit(status)


@task("limited", time_limit=1.5, max_failed_times=2, **FAST)
def limited(job: JobContext) -> None:
    """Has a hard time limit of 1.5 s; payload {"sleep": s}."""
    _work(job)


for _dst in ("todo", "failed", "done", "zombie"):
    task(f"zombie_{_dst}", zombie_status=_dst, max_failed_times=3, **FAST)(record.function)


@task("leaky", **FAST)
def leaky(job: JobContext) -> None:
    """Leaves a transaction open (a bug in a job): the worker must roll it back before the next job."""
    from django.db import transaction

    transaction.set_autocommit(False)
    _record(job)


@task("noop", parallel=4)
def noop(job: JobContext) -> None:
    """Does nothing: the benchmark's job."""


# The test jobs of other suites live in modules of their own, imported here so that autodiscovery finds them.
from . import (  # noqa: E402, F401
    jobs_cancel,
    jobs_chaos,
    jobs_clock,
    jobs_flow,
    jobs_poison,
    jobs_snooze,
    jobs_windows,
)
