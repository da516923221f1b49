"""Dispatchers: the fast path between the code that makes a job due and the workers (see ``base.py``)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from django.conf import settings

from ..conf import get_settings
from ..exceptions import ConfigurationError
from .base import Dispatcher, Source

if TYPE_CHECKING:
    from .database import DatabaseDispatcher
    from .redis import RedisDispatcher

__all__ = ["Dispatcher", "Source", "database_dispatcher", "new_dispatcher", "producer_dispatcher", "redis_dispatcher",
           "reset_producer_dispatcher"]

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


def redis_dispatcher() -> RedisDispatcher:
    """The Redis dispatcher alone (no failover), on the cache alias ``MEEPO["REDIS"]``."""
    conf = get_settings()
    from .redis import RedisDispatcher

    return RedisDispatcher(redis_client(conf.redis), global_prefix=conf.key_prefix,
                           alive_ttl=conf.worker_alive_ttl)


def database_dispatcher() -> DatabaseDispatcher:
    """The database dispatcher: workers claim due jobs straight from the table of ``MEEPO["DATABASE"]``."""
    conf = get_settings()
    from .database import DatabaseDispatcher

    return DatabaseDispatcher(using=conf.database, poll_interval=conf.poll_interval)


def new_dispatcher() -> Dispatcher:
    """A dispatcher of one's own (a worker's fetcher keeps state: its subscription, its pending entries).

    ``MEEPO["DISPATCH"] = "database"``: the database dispatcher. ``"redis"`` (the default): Redis, with
    automatic failover to the database while Redis does not answer (``failover.py``).
    """
    if get_settings().dispatch == "database":
        return database_dispatcher()
    from .failover import FailoverDispatcher

    return FailoverDispatcher(redis_dispatcher(), database_dispatcher())


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
