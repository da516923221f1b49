"""Global settings, read lazily from ``settings.MEEPO``.

Every key, its default, its validator and its doc line are defined once, in ``django_meepo/spec``
(``SETTINGS``); docs/reference.md's table is printed from there. For example::

    MEEPO = {
        "REDIS": "meepo",             # django-redis cache alias used for dispatch (give it its own alias)
        "DISPATCH": "redis",          # or "database" (no Redis at all)
        "DEFAULTS": {"PARALLEL": 8},  # option defaults for every task (spec.OPTIONS)
        "TASKS": {"name": {"FUNCTION": "app.jobs.func", ...}},
    }

Every read goes through :func:`get_settings`, so tests may use ``override_settings(MEEPO=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from .spec import DISPATCHERS, SETTINGS

GLOBAL_KEYS = frozenset(SETTINGS)
__all__ = ["DISPATCHERS", "GLOBAL_KEYS", "MeepoSettings", "get_settings", "raw_settings"]


def _default(key: str) -> Callable[[], Any]:
    """The field's default, from the spec (made afresh each time, so no two objects share a dict)."""
    setting = SETTINGS[key]
    return lambda: setting.value_from({})


@dataclass(frozen=True, slots=True, kw_only=True)
class MeepoSettings:
    """``settings.MEEPO`` typed: one attribute per ``spec.SETTINGS`` key, lower-cased (a unit test holds them equal)."""

    database: str = field(default_factory=_default("DATABASE"))
    redis: str = field(default_factory=_default("REDIS"))
    redis_cluster: Any = field(default_factory=_default("REDIS_CLUSTER"))
    key_prefix: str = field(default_factory=_default("KEY_PREFIX"))
    max_payload_bytes: int = field(default_factory=_default("MAX_PAYLOAD_BYTES"))
    max_result_bytes: int = field(default_factory=_default("MAX_RESULT_BYTES"))
    max_error_bytes: int = field(default_factory=_default("MAX_ERROR_BYTES"))
    autodiscover: tuple[str, ...] = field(default_factory=_default("AUTODISCOVER"))
    defaults: dict[str, Any] = field(default_factory=_default("DEFAULTS"))
    tasks: dict[str, dict[str, Any]] = field(default_factory=_default("TASKS"))
    dispatch: str = field(default_factory=_default("DISPATCH"))
    worker_alive_ttl: float = field(default_factory=_default("WORKER_ALIVE_TTL"))
    retention_days: float | None = field(default_factory=_default("RETENTION_DAYS"))
    poll_interval: float = field(default_factory=_default("POLL_INTERVAL"))
    progress_interval: float = field(default_factory=_default("PROGRESS_INTERVAL"))
    schedule: dict[str, Any] = field(default_factory=_default("SCHEDULE"))
    json_encoder: str | None = field(default_factory=_default("JSON_ENCODER"))


def raw_settings() -> Any:
    return getattr(settings, "MEEPO", {})


_cached: tuple[Any, MeepoSettings] | None = None


def get_settings() -> MeepoSettings:
    """The MEEPO setting as a typed object, rebuilt when the setting object is replaced (override_settings);
    unknown or ill-typed values are reported by system checks."""
    global _cached
    raw = raw_settings()
    cached = _cached
    if cached is not None and cached[0] is raw:
        return cached[1]
    result = _build(raw)
    _cached = (raw, result)
    return result


def _build(raw: Any) -> MeepoSettings:
    if not isinstance(raw, dict):
        raw = {}
    return MeepoSettings(**{s.attr: s.value_from(raw) for s in SETTINGS.values()})
