"""Test fixtures. Tests talk to the real MariaDB and Redis of this machine (see README).

Each test gets its own Redis key prefix on the shared Redis, so no test sees another's entries; a test that
must flush, stop or kill Redis uses ``private_redis`` (a redis-server of its own on a free port). Under
``CI=true`` a missing service fails the run; elsewhere the tests that need it are skipped.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connections
from django.test import override_settings

from django_meepo.dispatch import redis_client
from tests.support.services import IN_CI, RedisServer, redis_available
from tests.support.workers import WorkerPool

SESSION = uuid.uuid4().hex[:8]


def _require(available: bool, what: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.exit(f"{what} is not reachable and CI=true: the run fails instead of skipping", returncode=3)
    pytest.skip(f"{what} is not reachable")


@functools.cache
def _database_available() -> bool:
    conn = connections["default"]
    try:
        params = conn.get_connection_params()
        if conn.vendor == "mysql":
            params.pop("db", None)
            params.pop("database", None)
        elif conn.vendor == "postgresql":
            params["dbname"] = "postgres"
        elif conn.vendor == "sqlite":
            return True
        conn.get_new_connection(params).close()
        return True
    except Exception:
        return False


@functools.cache
def _redis_available() -> bool:
    return redis_available(settings.REDIS_URL)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Runs before pytest-django creates the test database: a missing database fails (CI) or skips."""
    _require(_database_available(), "the database (DATABASE_URL, default MariaDB at 127.0.0.1:3306)")


@pytest.fixture(autouse=True)
def services(request: pytest.FixtureRequest) -> None:
    """Tests outside tests/unit need the database and Redis; unit tests need nothing."""
    if "unit" in request.node.path.parts:
        return
    _require(_database_available(), "the database (DATABASE_URL, default MariaDB at 127.0.0.1:3306)")
    _require(_redis_available(), f"Redis at {settings.REDIS_URL}")


@pytest.fixture(autouse=True)
def key_prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"meepotest-{SESSION}-{uuid.uuid4().hex[:8]}"
    with override_settings(MEEPO={**settings.MEEPO, "KEY_PREFIX": prefix}):
        yield prefix
        try:
            client = redis_client()
            keys = list(client.scan_iter(match=f"*{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
        except Exception:
            pass


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server owned by this test, used by django-meepo (and by worker subprocesses) instead."""
    server = RedisServer().start()
    caches = {**settings.CACHES, "meepo": {**settings.CACHES["meepo"], "LOCATION": server.url}}
    try:
        with override_settings(CACHES=caches):
            yield server
    finally:
        server.cleanup()


@pytest.fixture(params=["shared", "own"])
def jobs_table(request: pytest.FixtureRequest) -> object:
    """Two tasks (``.record``, ``.other``) whose jobs are in the shared table, then in a table of their own."""
    from tests.support.tables import OWN, SHARED

    return SHARED if request.param == "shared" else OWN


@pytest.fixture
def workers() -> Iterator[WorkerPool]:
    pool = WorkerPool()
    yield pool
    pool.stop_all()


class _Flushing:
    """The test's Redis client; each command first waits for this process's outbox (dispatches are sent from a
    background thread after the commit), so a test reads what its commits dispatched."""

    def __init__(self, client: object) -> None:
        self._client = client

    def __getattr__(self, name: str) -> object:
        from django_meepo import outbox

        outbox.flush()
        return getattr(self._client, name)


@pytest.fixture
def redis() -> object:
    return _Flushing(redis_client())


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not leaked, f"threads left running: {leaked}"
