"""Counting, inside a worker process, every statement it sends to MariaDB.

Why on the client: performance_schema is off on this machine's MariaDB (turning it on needs a restart of a
shared server), and the server's status counters (``Questions``, ``Com_*``) count every client of the server.
So each worker process counts what its driver, mysqlclient, puts on the wire:

* every ``Connection.query()`` — all cursor statements, hand-written or from the ORM, single or
  ``executemany``, go through it;
* every ``commit()`` and ``rollback()`` (a statement each), and every ``autocommit()`` that changes the mode;
* connections opened, apart (each one also sends a few set-up statements from C: ``SET NAMES``, …).

Installed by the benchmark's Django app when ``BENCH_SQL_KEY`` is set; the counts go to the results Redis
(``$BENCH_RESULTS_URL``) every 50 ms as ``<key>:statements`` and ``<key>:connections``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import redis

from .recorder import ENV_URL

log = logging.getLogger(__name__)

ENV_KEY = "BENCH_SQL_KEY"
FLUSH_EVERY = 0.05


class _Counter:
    def __init__(self, url: str, key: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.key = key
        self.lock = threading.Lock()
        self.counts = {"statements": 0, "connections": 0}

    def add(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def loop(self) -> None:
        while True:
            time.sleep(FLUSH_EVERY)
            with self.lock:
                counts, self.counts = self.counts, {"statements": 0, "connections": 0}
            try:
                pipe = self.client.pipeline(transaction=False)
                for what, n in counts.items():
                    if n:
                        pipe.incrby(f"{self.key}:{what}", n)
                pipe.execute()
            except redis.RedisError as exc:
                log.warning("bench sqlcount: could not send counts (%s)", exc)


def install() -> None:
    """Wrap mysqlclient's Connection methods so that each statement sent is counted (once per process)."""
    import MySQLdb.connections as mc

    if getattr(mc.Connection, "_bench_counted", False):
        return
    counter = _Counter(os.environ[ENV_URL], os.environ[ENV_KEY])
    cls: Any = mc.Connection
    original = {name: getattr(cls, name) for name in ("__init__", "query", "commit", "rollback", "autocommit")}

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        counter.add("connections")
        original["__init__"](self, *args, **kwargs)

    def query(self: Any, sql: Any) -> Any:
        counter.add("statements")
        return original["query"](self, sql)

    def commit(self: Any) -> Any:
        counter.add("statements")
        return original["commit"](self)

    def rollback(self: Any) -> Any:
        counter.add("statements")
        return original["rollback"](self)

    def autocommit(self: Any, on: Any) -> Any:
        if self.get_autocommit() != bool(on):
            counter.add("statements")
        return original["autocommit"](self, on)

    for function in (__init__, query, commit, rollback, autocommit):
        setattr(cls, function.__name__, function)
    cls._bench_counted = True
    threading.Thread(target=counter.loop, name="bench-sqlcount", daemon=True).start()


def read(url: str, key: str) -> tuple[int, int]:
    """(statements, connections) counted so far under ``key``."""
    statements, connections = redis.Redis.from_url(url).mget(f"{key}:statements", f"{key}:connections")
    return int(statements or 0), int(connections or 0)
