"""The Redis a chaos run owns: one redis-server (``standalone``), a Sentinel topology (``sentinel``) or a Redis
Cluster (``cluster``: 3 masters, 3 replicas).

A topology gives the runner what ``procs.Redis`` gives: ``env()`` (what the workers and the tool need to reach
it), ``client()`` (the current master), ``start()``, ``proc`` (None while no master runs) and ``cleanup()``.
Faults name the topologies they apply to (``faults.Fault.topologies``): the standalone faults kill or flush the
one server; the ``sentinel_failover`` drill kills the master of a Sentinel topology; the ``cluster_failover``
and ``cluster_slot_migration`` drills kill a Cluster master and move a slot of the run's tasks.

Everything is started as ``procs.Proc`` (a session of its own) and stopped by PID in ``cleanup()``.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .cluster import ClusterRedis, wait_for
from .procs import Proc, Redis, free_port

MASTER_NAME = "meepochaos"
DOWN_AFTER_MS = 1000
PROMOTION_TIMEOUT = 30.0


@dataclass
class SentinelRedis:
    """A master, a replica and three sentinels (quorum 2, the master down after 1 s), on free ports.

    :meth:`failover` is the drill: kill -9 of the master, wait for the sentinels to promote the replica, then
    the old master comes back (empty) as a replica of the new one, so that the next drill has one to promote.
    """

    servers: list[Redis] = field(default_factory=lambda: [Redis(), Redis()])
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="chaos-sentinel-")))
    sentinels: list[Proc] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    closed: bool = False

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": f"redis://{MASTER_NAME}/0",
                "MEEPO_REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for p in self.ports)}

    @property
    def url(self) -> str:
        return self.env()["REDIS_URL"]

    def master_port(self) -> int | None:
        """The master's port as a sentinel reports it now (None while none can say)."""
        for port in self.ports:
            with contextlib.suppress(redis.RedisError, TypeError, ValueError):
                _host, master = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) \
                    .sentinel_get_master_addr_by_name(MASTER_NAME)
                return int(master)
        return None

    def master(self) -> Redis:
        port = self.master_port() if self.ports else self.servers[0].port
        found = [s for s in self.servers if s.port == port]
        if not found:
            raise RuntimeError(f"the sentinels name port {port}, none of this topology's servers")
        return found[0]

    @property
    def proc(self) -> Proc | None:
        with contextlib.suppress(RuntimeError):
            return self.master().proc
        return None

    def client(self, timeout: float = 2.0) -> redis.Redis:
        return self.master().client(timeout)

    def start(self) -> None:
        """The first time: the whole topology. Later (the drain): any server that is down, as a replica."""
        if self.closed:
            raise RuntimeError("the run is over: the Sentinel topology is not started again")
        if self.sentinels:
            for server in self.servers:
                if server.proc is None or not server.proc.alive():
                    self._start_replica(server, self.master())
            return
        first, second = self.servers
        first.start()
        self._start_replica(second, first)
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        for i in range(3):
            port = free_port()
            conf = self.dir / f"sentinel-{i}.conf"
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {first.port} 2\n"
                            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                            f"sentinel failover-timeout {MASTER_NAME} 10000\n")
            log = self.dir / f"sentinel-{i}.log"
            with open(log, "ab") as out:
                popen = subprocess.Popen([binary, str(conf), "--sentinel"], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            self.sentinels.append(Proc(f"sentinel-{i}", popen, log))
            self.ports.append(port)
        for port in self.ports:
            wait_for(lambda port=port: self._sees_replica(port), 30,  # type: ignore[misc]
                     f"sentinel {port} to see the master, its replica and the other sentinels")

    def _start_replica(self, server: Redis, master: Redis) -> None:
        server.extra_args = ("--replicaof", "127.0.0.1", str(master.port))
        server.start()
        wait_for(lambda: _link_up(server), 20, f"redis-server {server.port} to sync with {master.port}")

    def _sees_replica(self, port: int) -> bool:
        with contextlib.suppress(redis.RedisError):
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
            return bool(client.sentinel_slaves(MASTER_NAME)) and len(client.sentinel_sentinels(MASTER_NAME)) >= 2
        return False

    def failover(self) -> str:
        """kill -9 of the master; returns what happened. If the answer of a sentinel is lost the next one is
        asked; if no promotion comes within PROMOTION_TIMEOUT this raises (the runner records the fault as
        failed and the run goes on: the drain restarts what is down)."""
        old = self.master()
        started = time.monotonic()
        old.kill()
        wait_for(lambda: self.master_port() not in (None, old.port), PROMOTION_TIMEOUT,
                 f"the sentinels to promote a replica after killing the master on port {old.port}")
        promoted = time.monotonic() - started
        new = self.master()
        self._start_replica(old, new)
        return (f"master :{old.port} killed; :{new.port} promoted after {promoted:.1f} s; the old master is back, "
                "empty, as its replica")

    def cleanup(self) -> None:
        self.closed = True
        for proc in self.sentinels:
            proc.stop(grace=2)
        for server in self.servers:
            server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


def _link_up(server: Redis) -> bool:
    with contextlib.suppress(redis.RedisError):
        return server.client().info("replication").get("master_link_status") == "up"
    return False


TOPOLOGIES: dict[str, Callable[[], Redis | SentinelRedis | ClusterRedis]] = {
    "standalone": Redis, "sentinel": SentinelRedis, "cluster": ClusterRedis}
