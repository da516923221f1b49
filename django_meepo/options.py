"""Task options: every knob Meepo's ``MustNewTask`` had, typed and validated in one place.

| option (decorator / settings)          | Meepo                          | default |
|----------------------------------------|--------------------------------|---------|
| ``parallel`` / ``PARALLEL``            | SetParallelNum                 | 4       |
| ``max_failed_times`` / ``MAX_FAILED_TIMES`` | SetMaxFailedTimes (0 = no limit) | 3 |
| ``zombie_status`` / ``ZOMBIE_STATUS``  | SetHandleZombieJobsDstStatus   | "todo"  |
| ``sweep_period`` / ``SWEEP_PERIOD``    | SetHandleZombieJobsPeriod (s)  | 5       |
| ``lease_timeout`` / ``LEASE_TIMEOUT``  | SetHandleZombieJobsTimeout (s) | 30      |
| ``heartbeat`` / ``HEARTBEAT``          | (new) lease renewal period (s) | 10      |
| ``sweep_limit`` / ``SWEEP_LIMIT``      | SetHandleZombieJobsLimit (rows per query) | 1000 |
| ``key_prefix`` / ``KEY_PREFIX``        | SetListNamePrefix              | MEEPO["KEY_PREFIX"] |
| ``auto_commit`` / ``AUTO_COMMIT``      | SetAutoCommit                  | True    |
| ``time_limit`` / ``TIME_LIMIT``        | (new) hard time limit (s)      | None    |
| ``retry_backoff`` / ``RETRY_BACKOFF``  | (new) first retry delay (s)    | 1       |
| ``retry_backoff_max`` / ``RETRY_BACKOFF_MAX`` | (new) longest retry delay (s) | 600 |
| ``retry_jitter`` / ``RETRY_JITTER``    | (new) randomise delays         | True    |
| ``prefetch`` / ``PREFETCH``            | (new) jobs claimed beyond free slots | None (adapts) |
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from .states import ZOMBIE_DESTINATIONS

DEFAULTS: dict[str, Any] = {
    "parallel": 4,
    "max_failed_times": 3,
    "zombie_status": "todo",
    "sweep_period": 5.0,
    "lease_timeout": 30.0,
    "heartbeat": 10.0,
    "sweep_limit": 1000,
    "key_prefix": None,
    "auto_commit": True,
    "time_limit": None,
    "retry_backoff": 1.0,
    "retry_backoff_max": 600.0,
    "retry_jitter": True,
    "prefetch": None,
}

TASK_NAME_MAX = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOptions:
    parallel: int
    max_failed_times: int
    zombie_status: str
    sweep_period: float
    lease_timeout: float
    heartbeat: float
    sweep_limit: int
    key_prefix: str | None
    auto_commit: bool
    time_limit: float | None
    retry_backoff: float
    retry_backoff_max: float
    retry_jitter: bool
    prefetch: int | None


OPTION_NAMES = frozenset(f.name for f in fields(TaskOptions))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


def _positive_int(v: Any) -> str | None:
    return None if _is_int(v) and v >= 1 else "must be an integer >= 1"


def _non_negative_int(v: Any) -> str | None:
    return None if _is_int(v) and v >= 0 else "must be an integer >= 0"


def _optional_non_negative_int(v: Any) -> str | None:
    return None if v is None else _non_negative_int(v)


def _positive_number(v: Any) -> str | None:
    return None if _is_number(v) and v > 0 else "must be a number of seconds > 0"


def _non_negative_number(v: Any) -> str | None:
    return None if _is_number(v) and v >= 0 else "must be a number of seconds >= 0"


def _optional_positive_number(v: Any) -> str | None:
    return None if v is None else _positive_number(v)


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be True or False"


def _zombie_status(v: Any) -> str | None:
    if v in ZOMBIE_DESTINATIONS:
        return None
    return f"must be one of {', '.join(ZOMBIE_DESTINATIONS)}"


def _key_prefix(v: Any) -> str | None:
    if v is None or (isinstance(v, str) and v and not any(c.isspace() for c in v)):
        return None
    return "must be a non-empty string without spaces"


VALIDATORS: dict[str, Callable[[Any], str | None]] = {
    "parallel": _positive_int,
    "max_failed_times": _non_negative_int,
    "zombie_status": _zombie_status,
    "sweep_period": _positive_number,
    "lease_timeout": _positive_number,
    "heartbeat": _positive_number,
    "sweep_limit": _positive_int,
    "key_prefix": _key_prefix,
    "auto_commit": _bool,
    "time_limit": _optional_positive_number,
    "retry_backoff": _non_negative_number,
    "retry_backoff_max": _non_negative_number,
    "retry_jitter": _bool,
    "prefetch": _optional_non_negative_int,
}


def normalise_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    """Settings use UPPER_CASE keys, the decorator lower_case; both become lower_case."""
    return {str(k).lower(): v for k, v in values.items()}


def option_errors(values: Mapping[str, Any]) -> list[str]:
    """Human-readable problems with a (lower-cased) option mapping; empty when it is valid."""
    errors: list[str] = []
    for name, value in values.items():
        if name not in VALIDATORS:
            errors.append(f"unknown option {name.upper()!r} (known: {', '.join(sorted(OPTION_NAMES))})")
            continue
        problem = VALIDATORS[name](value)
        if problem:
            errors.append(f"{name.upper()} {problem}, not {value!r}")
    merged = {**DEFAULTS, **{k: v for k, v in values.items() if k in VALIDATORS}}
    lease, beat = merged["lease_timeout"], merged["heartbeat"]
    if _is_number(lease) and _is_number(beat) and lease > 0 and beat > 0 and beat >= lease:
        errors.append(f"HEARTBEAT ({beat}) must be shorter than LEASE_TIMEOUT ({lease}), or leases lapse "
                      "while jobs still run; a third of it is a good value")
    return errors


def build_options(*layers: Mapping[str, Any]) -> TaskOptions:
    """Merge option layers (defaults first, most specific last) into a TaskOptions; raises ValueError."""
    merged: dict[str, Any] = dict(DEFAULTS)
    for layer in layers:
        merged.update(normalise_keys(layer))
    errors = option_errors({k: v for k, v in merged.items()})
    if errors:
        raise ValueError("; ".join(errors))
    return TaskOptions(**{name: merged[name] for name in OPTION_NAMES})


def task_name_error(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return f"a task name must be a non-empty string, not {name!r}"
    if len(name) > TASK_NAME_MAX:
        return f"task name {name!r} is longer than {TASK_NAME_MAX} characters"
    if any(c.isspace() or c in ":{}" for c in name):
        return f"task name {name!r} may not contain spaces, ':' or braces (it becomes part of Redis keys)"
    return None
