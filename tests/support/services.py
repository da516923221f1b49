"""Service helpers for tests: availability checks, a private redis-server, database connection ids."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns a truthy value; fail the test with ``message`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(interval)


@dataclass
class RedisServer:
    """A redis-server owned by one test: it may be flushed, stopped and started again (empty, or with its data)."""

    port: int = field(default_factory=free_port)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="meepo-redis-")))
    process: subprocess.Popen | None = None
    # More redis-server arguments, e.g. ("--enable-debug-command", "yes") for a test that issues DEBUG SLEEP.
    extra_args: tuple[str, ...] = ()
    host: str = "127.0.0.1"  # the address it listens on (a test's own bridge, for hosts in network namespaces)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, socket_timeout=2)

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", self.host, "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--maxmemory-policy", "noeviction",
             # Off the loopback (a test's own bridge) Redis refuses clients without a password unless told not to.
             "--protected-mode", "yes" if self.host.startswith("127.") else "no", *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._ping, timeout=10, message=f"redis-server on port {self.port}")
        return self

    def _ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def stop(self, *, keep_data: bool = False) -> None:
        """Kill the server (it starts again empty), or with ``keep_data`` shut it down saving its data to
        ``dir``, so that ``start`` brings it back with everything it held (a restart, not a loss)."""
        if self.process and self.process.poll() is None:
            if keep_data:
                self.client().shutdown(save=True)  # the server writes dump.rdb, then exits
            else:
                self.process.kill()
            self.process.wait(timeout=10)
        if not keep_data:
            (self.dir / "dump.rdb").unlink(missing_ok=True)  # from an earlier stop that kept the data
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_available(url: str = "redis://127.0.0.1:6379/0") -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def kill_connections(database: str) -> int:
    """Kill every session on ``database`` except the caller's own (the fault, not a server stop).

    MariaDB/MySQL: ``KILL CONNECTION``; PostgreSQL: ``pg_terminate_backend``. SQLite has no sessions to kill:
    the calling test is skipped.
    """
    import pytest
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = %s AND pid <> pg_backend_pid()", [database])
            return int(cursor.fetchone()[0])
    if connection.vendor != "mysql":
        pytest.skip(f"{connection.vendor} has no connections to kill")
    killed = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
                       [database])
        for (conn_id,) in cursor.fetchall():
            try:
                cursor.execute(f"KILL CONNECTION {int(conn_id)}")
                killed += 1
            except Exception:
                continue
    return killed


def session_time_zone_sql(offset_hours: int) -> str:
    """The statement that sets this database session's time zone (MariaDB/MySQL or PostgreSQL)."""
    import pytest
    from django.db import connection

    if connection.vendor == "mysql":
        return f"SET time_zone = '{offset_hours:+03d}:00'"
    if connection.vendor == "postgresql":
        return f"SET TIME ZONE INTERVAL '{offset_hours:+03d}:00' HOUR TO MINUTE"
    pytest.skip(f"{connection.vendor} sessions have no time zone")
    raise AssertionError("unreachable")
