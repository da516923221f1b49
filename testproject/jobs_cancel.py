"""Test jobs for cancelling a running job (tests/acceptance/test_cancel.py)."""

from __future__ import annotations

import time
from pathlib import Path

from django_meepo import JobContext, task
from django_meepo.exceptions import CommitConflict

from .jobs import FAST, _record

GATE_SECONDS = 120.0


def _report(path: str, text: str) -> None:
    """Write a test's report whole or not at all: the test polls for the file, then reads it."""
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


@task("cancel_coop", **FAST)
def cancel_coop(job: JobContext) -> str:
    """Payload {"report": path}: records its run, then polls ``job.cancelled`` (every 0.05 s, up to 120 s); once
    set, writes "cancelled=True stopping=True" (as it saw them) to ``report`` and returns early."""
    spec = job.json()
    _record(job)
    deadline = time.monotonic() + GATE_SECONDS
    while not job.cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
    _report(spec["report"], f"cancelled={job.cancelled} stopping={job.stopping}")
    return "returned early"


def _stubborn(job: JobContext) -> str:
    """Records its run, waits (ignoring ``job.cancelled``) until ``gate`` exists, then notes what it saw."""
    spec = job.json()
    _record(job)
    deadline = time.monotonic() + GATE_SECONDS
    while not Path(spec["gate"]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"cancelled={job.cancelled}"


@task("cancel_stubborn", **FAST)
def cancel_stubborn(job: JobContext) -> str:
    """Auto-commit; payload {"gate": path, "report": path}: see ``_stubborn``; writes what it saw to ``report``
    and returns normally (the worker's commit of ``done`` is then refused: the run is fenced)."""
    seen = _stubborn(job)
    _report(job.json()["report"], seen)
    return seen


@task("cancel_stubborn_manual", auto_commit=False, **FAST)
def cancel_stubborn_manual(job: JobContext) -> None:
    """Manual mode; payload {"gate": path, "report": path}: see ``_stubborn``; then commits ``done`` itself and
    writes what it saw and what the commit said ("committed", or the CommitConflict) to ``report``."""
    seen = _stubborn(job)
    try:
        job.commit("done")
        outcome = "committed"
    except CommitConflict as exc:
        outcome = f"CommitConflict: {exc}"
    _report(job.json()["report"], f"{seen} {outcome}")


@task("cancel_heartbeat", lease_timeout=300, heartbeat=120, sweep_period=1)
def cancel_heartbeat(job: JobContext) -> str:
    """Payload {"report": path}: as ``cancel_coop``, but renews its own lease with ``job.heartbeat()`` every 0.05 s;
    the worker's monitor renews only every 120 s, so a cancel seen sooner was seen by the job's own heartbeat."""
    spec = job.json()
    _record(job)
    deadline = time.monotonic() + GATE_SECONDS
    while not job.cancelled and time.monotonic() < deadline:
        job.heartbeat()
        time.sleep(0.05)
    _report(spec["report"], f"cancelled={job.cancelled} stopping={job.stopping}")
    return "returned early"
