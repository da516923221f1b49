"""Test jobs for flow control: per-task parallel in a multi-task worker, pause and resume, global concurrency
and rate limits
(tests/acceptance/test_flow.py).

Each run appends ``"<task> <job id> <start> <end>"`` (wall-clock seconds) to the file named by its payload's
``"log"``, so a test can compute the largest number of runs of a task that overlapped.
"""

from __future__ import annotations

import os
import time

from django_meepo import JobContext, task

from .jobs import FAST


def _timed(job: JobContext) -> None:
    spec = job.json() if job.payload else {}
    start = time.time()
    # "sleep_first": how long the first attempt sleeps (a run that its worker's SIGKILL interrupts)
    first = spec.get("sleep_first") if job.attempt == 1 else None
    time.sleep(float(first if first is not None else spec.get("sleep", 0.05)))
    end = time.time()
    line = f"{job.task} {job.id} {start:.6f} {end:.6f}\n".encode()
    fd = os.open(spec["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one small O_APPEND write: lines of concurrent runs never interleave
    finally:
        os.close(fd)


@task("flow_serial", parallel=1, **FAST)
def flow_serial(job: JobContext) -> None:
    """parallel=1: never two at once in a worker. Payload {"log": path, "sleep": s}."""
    _timed(job)


@task("flow_wide", parallel=4, **FAST)
def flow_wide(job: JobContext) -> None:
    """parallel=4. Payload {"log": path, "sleep": s}."""
    _timed(job)


@task("flow_limited", parallel=4, concurrency=3, **FAST)
def flow_limited(job: JobContext) -> None:
    """concurrency=3: at most 3 at once across every worker. Payload {"log": path, "sleep": s}."""
    _timed(job)


@task("flow_keyed", parallel=4, key_concurrency=1, **FAST)
def flow_keyed(job: JobContext) -> None:
    """key_concurrency=1: jobs of one concurrency_key one at a time, other keys beside them."""
    _timed(job)


@task("flow_rated", parallel=4, rate="10/s", **FAST)
def flow_rated(job: JobContext) -> None:
    """rate="10/s": at most 10 starts per second (plus one burst of 10) across every worker."""
    _timed(job)


@task("flow_key_rated", parallel=4, key_rate="5/s", **FAST)
def flow_key_rated(job: JobContext) -> None:
    """key_rate="5/s": at most 5 starts per second of one concurrency_key."""
    _timed(job)
