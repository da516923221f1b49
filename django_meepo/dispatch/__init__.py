"""Dispatchers: the fast path between the code that makes a job due and the workers (see ``base.py``)."""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING

from django.conf import settings

from ..conf import get_settings
from ..exceptions import ConfigurationError
from .base import Dispatcher, Source

if TYPE_CHECKING:
    from .database import DatabaseDispatcher
    from .redis import RedisDispatcher

__all__ = ["Dispatcher", "Source", "database_dispatcher", "give_back_fetch_dispatcher", "new_dispatcher",
           "process_dispatcher", "producer_dispatcher", "redis_dispatcher", "reset_producer_dispatcher",
           "take_fetch_dispatcher"]

_producer: Dispatcher | None = None
_fetcher: weakref.ref[object] | None = None  # the worker of this process that fetches through _producer
_producer_lock = threading.Lock()


def redis_client(alias: str | None = None):  # type: ignore[no-untyped-def]
    """The redis-py client behind the django-redis cache alias ``MEEPO["REDIS"]`` — or, when
    ``MEEPO["REDIS_CLUSTER"]`` is set, this process's ``RedisCluster`` on those nodes (``cluster.py``)."""
    conf = get_settings()
    if conf.redis_cluster is not None and alias is None:
        from .cluster import cluster_client, validate

        if problem := validate(conf.redis_cluster):
            raise ConfigurationError(f"MEEPO['REDIS_CLUSTER'] {problem}, not {conf.redis_cluster!r}")
        return cluster_client(conf.redis_cluster)
    alias = alias or conf.redis
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

    return RedisDispatcher(redis_client(), global_prefix=conf.key_prefix,
                           alive_ttl=conf.worker_alive_ttl)


def database_dispatcher() -> DatabaseDispatcher:
    """The database dispatcher: workers claim due jobs straight from the table of ``MEEPO["DATABASE"]``."""
    conf = get_settings()
    from .database import DatabaseDispatcher

    return DatabaseDispatcher(using=conf.database, poll_interval=conf.poll_interval,
                              listen=conf.dispatch == "database")


def new_dispatcher() -> Dispatcher:
    """A new dispatcher (tests, and callers that want one apart from the process's: :func:`process_dispatcher`).

    ``MEEPO["DISPATCH"] = "database"``: the database dispatcher. ``"redis"`` (the default): Redis, with
    automatic failover to the database while Redis does not answer (``failover.py``).
    """
    if get_settings().dispatch == "database":
        return database_dispatcher()
    from .failover import FailoverDispatcher

    return FailoverDispatcher(redis_dispatcher(), database_dispatcher())


def process_dispatcher() -> Dispatcher:
    """The one dispatcher of this process: the outbox dispatches through it, a worker fetches through it and its
    sweeper asks it what Redis holds. One dispatcher means one circuit breaker: when the outbox finds Redis down,
    the worker claims from the table at once, and one answer from Redis brings every caller back.

    Sharing is safe: the state a fetch keeps (the subscription, the round-robin turn) is touched only by the
    worker's fetching thread, the sweeper's (the epoch last seen) only by the sweeper; the Redis client is
    thread-safe and the breaker locks its own state.
    """
    global _producer
    if _producer is None:
        with _producer_lock:
            if _producer is None:
                _producer = new_dispatcher()
    return _producer


producer_dispatcher = process_dispatcher  # the name used before the worker shared it


def take_fetch_dispatcher(owner: object) -> tuple[Dispatcher, bool]:
    """A dispatcher for the worker ``owner`` to fetch through, and whether it is the process's own (see
    :func:`process_dispatcher`).

    The first worker of a process gets the process's dispatcher, so its fetches share one breaker with the
    outbox. Fetch state (the subscription, the round-robin turn) belongs to one worker, though: another worker
    alive in the same process at the same time (embedded workers, tests) gets a new dispatcher of its own. The
    worker gives the process's back with :func:`give_back_fetch_dispatcher` when it stops (or by being
    garbage-collected, if it never ran).
    """
    global _fetcher
    with _producer_lock:
        first = _fetcher is None or _fetcher() is None
        if first:
            _fetcher = weakref.ref(owner)
    return (process_dispatcher(), True) if first else (new_dispatcher(), False)


def give_back_fetch_dispatcher(owner: object) -> None:
    global _fetcher
    with _producer_lock:
        if _fetcher is not None and _fetcher() is owner:
            _fetcher = None


def reset_producer_dispatcher(**_: object) -> None:
    """Forget the process-wide dispatcher (settings changed, or in a forked child: the parent's subscription and
    breaker are not the child's)."""
    global _producer, _fetcher
    _producer = None
    _fetcher = None


os.register_at_fork(after_in_child=reset_producer_dispatcher)
