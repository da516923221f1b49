"""Test jobs for the loss-window tests (lost replies, prefetch, lost claims)."""

from __future__ import annotations

import time

from django_meepo import JobContext, task

from .jobs import FAST, _record, _work

HANG_SECONDS = 600.0


@task("windows_prefetch", parallel=1, prefetch=5, **FAST)
def windows_prefetch(job: JobContext) -> None:
    """One slot and a fixed PREFETCH of 5: claimed jobs wait in the worker's queue behind a running one.
    Payload as ``record``'s ({"sleep": s, ...})."""
    _work(job)


@task("windows_hostage", parallel=1, **FAST)
def windows_hostage(job: JobContext) -> None:
    """One slot and the adaptive prefetch (it grows to 100 once fast jobs were measured)."""
    _work(job)


@task("windows_hang_once", parallel=1, prefetch=2, **FAST)
def windows_hang_once(job: JobContext) -> None:
    """Payload {"hang": true}: the job's first attempt records its run, then hangs for HANG_SECONDS without
    looking at ``job.stopping`` (a call stuck in a library); its later attempts, and jobs without "hang", run as
    ``record``'s (payload {"sleep": s, ...}). One slot and a fixed PREFETCH of 2 queue claimed jobs behind it."""
    if job.attempt == 1 and (job.json() if job.payload else {}).get("hang"):
        _record(job)
        deadline = time.monotonic() + HANG_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.1)
        return
    _work(job)


# Two tasks whose expired leases end the job `failed`: a job stranded in `doing` (claimed, never run) then ends
# failed without running, instead of running once.
for _name in ("windows_claim_a", "windows_claim_b"):
    task(_name, parallel=2, zombie_status="failed", max_failed_times=3, **FAST)(windows_prefetch.function)
