"""Global settings, read lazily from ``settings.MEEPO``.

```python
MEEPO = {
    "DATABASE": "default",        # Django database alias holding the Job table
    "REDIS": "meepo",             # django-redis cache alias used for dispatch (give it its own alias)
    "KEY_PREFIX": "meepo",        # default Redis key prefix (a task may override it)
    "MAX_PAYLOAD_BYTES": 1048576, # payloads above this are refused with InvalidPayload
    "DISPATCH": "redis",          # "redis" (with failover to the database) or "database" (no Redis at all)
    "POLL_INTERVAL": 0.5,         # longest wait, in seconds, between polls of the table by an idle worker
    "AUTODISCOVER": ["jobs"],     # modules imported from each installed app to find @task functions
    "DEFAULTS": {...},            # option defaults for every task (see options.py)
    "TASKS": {"name": {"FUNCTION": "app.jobs.func", ...}},
    "RETENTION_DAYS": None,       # the sweeper deletes done/failed jobs finished longer ago (None: keep them)
}
```
Every read goes through :func:`get_settings`, so tests may use ``override_settings(MEEPO=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

GLOBAL_KEYS = {
    "DATABASE", "REDIS", "KEY_PREFIX", "MAX_PAYLOAD_BYTES", "AUTODISCOVER", "DEFAULTS", "TASKS",
    "DISPATCH", "WORKER_ALIVE_TTL", "RETENTION_DAYS", "POLL_INTERVAL",
}
DISPATCHERS = ("redis", "database")


@dataclass(frozen=True, slots=True, kw_only=True)
class MeepoSettings:
    database: str = "default"
    redis: str = "meepo"
    key_prefix: str = "meepo"
    max_payload_bytes: int = 1024 * 1024
    autodiscover: tuple[str, ...] = ("jobs",)
    defaults: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    dispatch: str = "redis"
    worker_alive_ttl: float = 5.0
    retention_days: float | None = None
    poll_interval: float = 0.5


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
    base = MeepoSettings()
    autodiscover = raw.get("AUTODISCOVER", base.autodiscover)
    return MeepoSettings(
        database=raw.get("DATABASE", base.database),
        redis=raw.get("REDIS", base.redis),
        key_prefix=raw.get("KEY_PREFIX", base.key_prefix),
        max_payload_bytes=raw.get("MAX_PAYLOAD_BYTES", base.max_payload_bytes),
        autodiscover=tuple(autodiscover) if isinstance(autodiscover, list | tuple) else base.autodiscover,
        defaults=dict(raw.get("DEFAULTS") or {}),
        tasks=dict(raw.get("TASKS") or {}),
        dispatch=raw.get("DISPATCH", base.dispatch),
        worker_alive_ttl=raw.get("WORKER_ALIVE_TTL", base.worker_alive_ttl),
        retention_days=raw.get("RETENTION_DAYS", base.retention_days),
        poll_interval=raw.get("POLL_INTERVAL", base.poll_interval),
    )
