"""Test jobs whose outcomes are hard to record (huge, NUL, lone surrogates)."""

from __future__ import annotations

import time

from django_meepo import JobContext, task

from .jobs import FAST, _record

HUGE_BYTES = 20_000_000  # over MariaDB's default max_allowed_packet (16 MiB)


def _outcome(kind: str) -> str | None:
    if kind == "huge":
        return "h" * HUGE_BYTES
    if kind == "surrogate":
        return "before \ud800 after"
    if kind == "nul":
        return "before \x00 after"
    if kind == "nul_error":
        raise RuntimeError("planned failure with a NUL \x00 in its message")
    if kind == "surrogate_error":
        raise RuntimeError("planned failure with a lone surrogate \udcff in its message")
    return "ok"


@task("poison", parallel=1, max_failed_times=1, **FAST)
def poison(job: JobContext) -> str | None:
    """Records its run, then returns or raises what its payload names: {"kind": "huge" | "surrogate" | "nul" |
    "nul_error" | "surrogate_error" | "ok"}. A failure is final (MAX_FAILED_TIMES 1)."""
    _record(job)
    return _outcome(job.json().get("kind", "ok"))


@task("quick", parallel=4, lease_timeout=3, heartbeat=0.2, sweep_period=1)
def quick(job: JobContext) -> str:
    """Sleeps ``{"sleep": s}`` (default 0); its leases are renewed five times a second (the renewal race)."""
    time.sleep(float(job.json().get("sleep", 0)) if job.payload else 0)
    return "ok"
