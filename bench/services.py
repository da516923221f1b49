"""The services around a run: a private redis-server to flush, key clean-up by prefix, MariaDB databases.

The shared Redis and MariaDB are never stopped or flushed: each system has a Redis database number and key
prefix of its own (deleted key by key afterwards) and a MariaDB database of its own.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrivateRedis:
    """A redis-server of the benchmark's own on a free port: the flush workload flushes this one."""

    port: int = field(default_factory=free_port)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-redis-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def __enter__(self) -> PrivateRedis:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--maxmemory-policy", "noeviction", "--databases", "16"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return self
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def delete_matching(url: str, pattern: str) -> int:
    """Delete every key matching ``pattern`` (SCAN + DEL: never a FLUSH); returns how many."""
    client = redis.Redis.from_url(url)
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += client.delete(*batch)
            batch = []
    if batch:
        deleted += client.delete(*batch)
    return deleted


def list_entries(url: str, pattern: str) -> int:
    """How many entries the Redis lists matching ``pattern`` hold together."""
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=pattern, count=1000, _type="list"))
    if not keys:
        return 0
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.llen(key)
    return int(sum(pipe.execute()))


def redis_version(url: str) -> str:
    return str(redis.Redis.from_url(url).info("server")["redis_version"])


# -------------------------------------------------------------------------------------------------- MariaDB

def mysql_params(url: str) -> dict[str, Any]:
    """mysqlclient connection arguments for ``mysql://user:password@host:port`` (no database)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mysql", "mariadb"):
        raise ValueError(f"the benchmark runs on MariaDB/MySQL: give a mysql:// URL, not {url!r}")
    return {"host": parsed.hostname or "127.0.0.1", "port": parsed.port or 3306,
            "user": unquote(parsed.username or "root"), "password": unquote(parsed.password or ""),
            "charset": "utf8mb4"}


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    import MySQLdb

    conn = MySQLdb.connect(**mysql_params(url))
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        conn.close()


def ensure_database(url: str, name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r}: letters, digits and underscores only")
    _query(url, f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")


def server_questions(url: str) -> int:
    """The server-wide ``Questions`` status counter: statements sent by every client of the server."""
    return int(_query(url, "SHOW GLOBAL STATUS LIKE 'Questions'")[0][1])


def mariadb_version(url: str) -> str:
    return str(_query(url, "SELECT VERSION()")[0][0])
