"""Samples and their summaries: each figure is reported as the minimum, median and maximum of its runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One value of one figure, from one run of one workload on one system."""

    system: str
    figure: str
    variant: str = ""
    value: float
    run: int
    note: str = ""  # e.g. "time-boxed": the value is real, but the workload did not finish

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Sample:
        return cls(**raw)


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """How many jobs a run expected to run, and how many ran (counts, not times)."""

    system: str
    workload: str
    variant: str = ""
    run: int
    expected: int
    ran: int
    calls: int

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Check:
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class Summary:
    runs: int
    minimum: float
    median: float
    maximum: float
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Summary | None:
        if not samples:
            return None
        values = [s.value for s in samples]
        notes = tuple(sorted({s.note for s in samples if s.note}))
        return cls(len(values), min(values), statistics.median(values), max(values), notes)


def percentile(values: Iterable[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of a non-empty collection."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]
