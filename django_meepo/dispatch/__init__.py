"""Dispatchers: the fast path between the code that makes a job due and the workers (see ``base.py``)."""

from __future__ import annotations

import threading

from django.conf import settings

from ..conf import get_settings
from ..exceptions import ConfigurationError
from .base import Dispatcher, Source

__all__ = ["Dispatcher", "Source", "new_dispatcher", "producer_dispatcher", "reset_producer_dispatcher"]

_producer: Dispatcher | None = None
_producer_lock = threading.Lock()


def redis_client(alias: str | None = None):  # type: ignore[no-untyped-def]
    """The redis-py client behind the django-redis cache alias ``MEEPO["REDIS"]``."""
    alias = alias or get_settings().redis
    caches = getattr(settings, "CACHES", {})
    if alias not in caches:
        raise ConfigurationError(f"MEEPO['REDIS'] names the cache alias {alias!r}, which is not in CACHES; add a "
                                 f"django-redis cache of its own for django-meepo")
    from django_redis import get_redis_connection

    return get_redis_connection(alias)


def new_dispatcher() -> Dispatcher:
    """A dispatcher of one's own (a worker's fetcher keeps state: its subscription, its pending entries)."""
    conf = get_settings()
    from .redis import RedisDispatcher

    return RedisDispatcher(redis_client(conf.redis), global_prefix=conf.key_prefix,
                           alive_ttl=conf.worker_alive_ttl)


def producer_dispatcher() -> Dispatcher:
    """The process-wide dispatcher used after commits (stateless use only: ``dispatch``)."""
    global _producer
    if _producer is None:
        with _producer_lock:
            if _producer is None:
                _producer = new_dispatcher()
    return _producer


def reset_producer_dispatcher(**_: object) -> None:
    """Forget the process-wide dispatcher (settings changed, or after a fork)."""
    global _producer
    _producer = None
