"""Test jobs for ``job.snooze()`` and ``job.progress()`` (tests/acceptance/test_snooze_progress.py)."""

from __future__ import annotations

import time
from pathlib import Path

from django_meepo import JobContext, task
from django_meepo.exceptions import CommitConflict

from .jobs import FAST, _record

GATE_SECONDS = 120.0


def _spec(job: JobContext) -> dict:
    return job.json() if job.payload else {}


def _wait_for(path: str) -> None:
    deadline = time.monotonic() + GATE_SECONDS
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _snooze_or_finish(job: JobContext) -> None:
    """Payload {"snooze": s, "snooze_on": [attempts], "fail_on": [attempts], "raise_after": bool}: records the run;
    on an attempt in ``fail_on`` it raises; on one in ``snooze_on`` (default [1]) it snoozes ``s`` seconds (and
    then raises when ``raise_after``: a snoozed run's exception is not a failure); any other attempt ends done."""
    spec = _spec(job)
    _record(job)
    if job.attempt in spec.get("fail_on", []):
        raise RuntimeError(f"planned failure of job {job.id} on attempt {job.attempt}")
    if job.attempt in spec.get("snooze_on", [1]):
        job.snooze(spec.get("snooze", 0.5))
        if spec.get("raise_after"):
            raise RuntimeError("raised after snoozing: not recorded")
        return
    if not job.task.startswith("snooze_auto"):
        job.commit("done")


@task("snooze_auto", max_failed_times=3, **FAST)
def snooze_auto(job: JobContext) -> None:
    """Auto-commit; see ``_snooze_or_finish``."""
    _snooze_or_finish(job)


@task("snooze_manual", auto_commit=False, max_failed_times=3, **FAST)
def snooze_manual(job: JobContext) -> None:
    """Manual mode; see ``_snooze_or_finish`` (a later attempt commits done itself)."""
    _snooze_or_finish(job)


@task("snooze_stale", parallel=2, **FAST)
def snooze_stale(job: JobContext) -> None:
    """Payload {"gate": path, "report": path}: attempt 1 records its run, waits until ``gate`` exists, then snoozes
    and writes what happened to ``report`` ("snoozed", or the CommitConflict's class and message); later attempts
    record their run and end done at once."""
    spec = _spec(job)
    _record(job)
    if job.attempt != 1:
        return
    _wait_for(spec["gate"])
    try:
        job.snooze(30)
        outcome = "snoozed"
    except CommitConflict as exc:
        outcome = f"CommitConflict: {exc}"
    report = Path(spec["report"])
    report.with_suffix(".tmp").write_text(outcome)
    report.with_suffix(".tmp").replace(report)  # whole or not at all: the test polls for the file and reads it


@task("progress_steps", **FAST)
def progress_steps(job: JobContext) -> None:
    """Payload {"steps": n, "gate": path}: reports progress i/n, i = 0, 1, … (at most n - 1; one report every
    0.02 s) until ``gate`` exists; then n/n "finished" and returns at once — a report the throttle holds back, so
    only the flush at the run's end writes it."""
    spec = _spec(job)
    steps = int(spec["steps"])
    deadline = time.monotonic() + GATE_SECONDS
    i = 0
    while not Path(spec["gate"]).exists() and time.monotonic() < deadline:
        job.progress(i, steps, note=f"step {i} of {steps}")
        i = min(i + 1, steps - 1)
        time.sleep(0.02)
    job.progress(steps, steps, note="finished")
