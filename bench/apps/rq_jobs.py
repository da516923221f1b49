"""RQ job function of the benchmark (RQ imports it by its dotted path)."""

from __future__ import annotations

from bench.recorder import record


def noop(number: int) -> None:
    record(number)
