"""Task options: every knob Meepo's ``MustNewTask`` had, typed and validated in one place.

Each option's name, default, validator, doc line and Meepo equivalent are defined once, in
``django_meepo/spec`` (``OPTIONS``); docs/reference.md's table of options is printed from there. Settings spell
an option in UPPER_CASE (``PARALLEL``), the decorator in lower_case (``parallel``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from .spec import OPTIONS, is_number, option_problem

DEFAULTS: dict[str, Any] = {o.name: o.default for o in OPTIONS.values()}

TASK_NAME_MAX = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOptions:
    """One attribute per ``spec.OPTIONS`` entry (a unit test holds them equal)."""

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
    concurrency: int | None
    key_concurrency: int | None
    rate: str | None
    key_rate: str | None

    @property
    def limited(self) -> bool:
        """True when a global limit (concurrency or rate, per task or per key) governs this task's claims."""
        return bool(self.concurrency or self.key_concurrency or self.rate or self.key_rate)

    @property
    def keyed(self) -> bool:
        """True when jobs of this task may carry a ``concurrency_key`` (a per-key limit is set)."""
        return bool(self.key_concurrency or self.key_rate)


OPTION_NAMES = frozenset(f.name for f in fields(TaskOptions))
VALIDATORS: dict[str, Callable[[Any], str | None]] = {o.name: o.validate for o in OPTIONS.values()}
__all__ = ["DEFAULTS", "OPTION_NAMES", "TASK_NAME_MAX", "VALIDATORS", "TaskOptions", "build_options", "normalise_keys",
           "option_errors", "task_name_error"]


def normalise_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    """Settings use UPPER_CASE keys, the decorator lower_case; both become lower_case."""
    return {str(k).lower(): v for k, v in values.items()}


def option_errors(values: Mapping[str, Any]) -> list[str]:
    """Human-readable problems with a (lower-cased) option mapping; empty when it is valid."""
    errors: list[str] = []
    for name, value in values.items():
        if name not in OPTIONS:
            errors.append(f"unknown option {name.upper()!r} (known: {', '.join(sorted(OPTION_NAMES))})")
            continue
        problem = option_problem(OPTIONS[name], value)
        if problem:
            errors.append(problem)
    merged = {**DEFAULTS, **{k: v for k, v in values.items() if k in OPTIONS}}
    lease, beat = merged["lease_timeout"], merged["heartbeat"]
    if is_number(lease) and is_number(beat) and lease > 0 and beat > 0 and beat >= lease:
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
