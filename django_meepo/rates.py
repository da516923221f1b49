"""Rate specs (``rate="100/s"``, ``key_rate="10/m"``): parsed and validated in one place, with no imports of the
rest of django-meepo (``spec`` validates task options with it).

A rate ``"N/P"`` allows N job starts per period P — ``s`` (second), ``m`` (minute), ``h`` (hour), ``d`` (day),
optionally with a count (``"5/10s"``: 5 per 10 seconds). It is enforced as a token bucket of N tokens that
refills at N per P (``ratelimit.py``): a burst of at most N at once, and over any window of t seconds at most
N + N·t/P starts — the limit plus one burst.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0,
         "hour": 3600.0, "d": 86400.0, "day": 86400.0}
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$")
MAX_COUNT = 1_000_000


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` starts per ``period`` seconds."""

    count: int
    period: float

    @property
    def per_second(self) -> float:
        return self.count / self.period

    def __str__(self) -> str:
        return f"{self.count}/{self.period:g}s"


def rate_problem(value: Any) -> str | None:
    """What is wrong with a rate spec, as a phrase completing "``RATE`` …, not ``value``"; None when good."""
    if not isinstance(value, str):
        return 'must be a string such as "100/s", "10/m" or "5/10s"'
    match = _SPEC.match(value.lower())
    if match is None or match.group(3) not in UNITS:
        return 'must be "<count>/<period>" such as "100/s", "10/m", "500/h" or "5/10s" (units s, m, h, d)'
    count, multiple = int(match.group(1)), float(match.group(2) or 1)
    if not 1 <= count <= MAX_COUNT:
        return f"must allow from 1 to {MAX_COUNT:,} jobs per period (0 would never run a job)"
    if multiple <= 0:
        return "must have a period longer than 0"
    return None


def parse_rate(value: Any, *, name: str = "rate") -> Rate:
    """A :class:`Rate` from ``"N/P"``; raises ValueError naming ``name`` and the value when it is malformed."""
    problem = rate_problem(value)
    if problem is not None:
        raise ValueError(f"{name} {problem}, not {value!r}")
    match = _SPEC.match(value.lower())
    assert match is not None
    return Rate(int(match.group(1)), float(match.group(2) or 1) * UNITS[match.group(3)])
