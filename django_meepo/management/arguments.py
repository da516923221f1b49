"""Argument parsing shared by the operator commands: durations, statuses, ids, each failing with a clear message."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.management.base import CommandError

from ..states import ALL_STATUSES

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def duration(text: str, option: str) -> timedelta:
    """``90`` (seconds), ``90s``, ``15m``, ``2h``, ``7d``, ``1w`` → a positive timedelta."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise CommandError(f"{option} must be a positive duration such as 90s, 15m, 2h or 7d, not {text!r}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])


def positive_number(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise CommandError(f"{option} must be a positive number, not {text!r}")
    return value


def non_negative_number(text: str, option: str) -> float:
    """A finite number >= 0 (a delay: 0 means now, as ``push(delay=0)``)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise CommandError(f"{option} must be a number of seconds >= 0, not {text!r}")
    return value


def positive_int(text: str, option: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise CommandError(f"{option} must be a positive integer, not {text!r}")
    return int(text)


def statuses(values: list[str] | None, option: str = "--status", allowed: tuple[str, ...] = ALL_STATUSES) -> list[str]:
    for value in values or ():
        if value not in allowed:
            raise CommandError(f"{option} {value!r} is not one of {', '.join(allowed)}")
    return list(values or ())


def job_ids(values: list[str]) -> list[int]:
    bad = [v for v in values if not v.isdigit() or int(v) <= 0 or len(v) > 19]
    if bad:
        raise CommandError(f"bad job id {bad[0]!r}: a job id is a positive integer")
    return [int(v) for v in values]
