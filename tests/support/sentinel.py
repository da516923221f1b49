"""A Redis Sentinel topology owned by one test: a master, a replica and three sentinels, on free ports.

Everything is started here and stopped by PID in ``stop()``; the sentinels' config files (which they rewrite)
live in one temporary directory, removed afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .services import RedisServer, free_port, wait_until

MASTER_NAME = "meepomaster"


@dataclass
class Sentinels:
    """``master`` and ``replica`` are RedisServers; ``ports`` the sentinels'. ``settings_options`` is the
    django-redis OPTIONS a cache needs to reach the master through them (django-redis's own Sentinel support)."""

    count: int = 3
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="meepo-sentinel-")))
    master: RedisServer | None = None
    replica: RedisServer | None = None
    ports: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self) -> Sentinels:
        self.master = RedisServer().start()
        self.replica = RedisServer(extra_args=("--replicaof", "127.0.0.1", str(self.master.port))).start()
        wait_until(lambda: self.replica is not None and self._replica_in_sync(), timeout=20,
                   message="the replica to sync with the master")
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        for i in range(self.count):
            port = free_port()
            conf = self.dir / f"sentinel-{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n")
            self.processes.append(subprocess.Popen([binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL))
            self.ports.append(port)
        for port in self.ports:
            wait_until(lambda port=port: self._sentinel_sees_replica(port), timeout=30,  # type: ignore[misc]
                       message=f"sentinel {port} to see the master and its replica")
        return self

    def _replica_in_sync(self) -> bool:
        assert self.replica is not None
        try:
            return self.replica.client().info("replication").get("master_link_status") == "up"
        except redis.RedisError:
            return False

    def _sentinel_sees_replica(self, port: int) -> bool:
        try:
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
            return bool(client.sentinel_slaves(MASTER_NAME)) and len(client.sentinel_sentinels(MASTER_NAME)) >= 1
        except redis.RedisError:
            return False

    def master_port(self) -> int | None:
        """The master's port as the sentinels report it now (None while they cannot say)."""
        try:
            _host, port = redis.Redis(host="127.0.0.1", port=self.ports[0], socket_timeout=2) \
                .sentinel_get_master_addr_by_name(MASTER_NAME)
            return int(port)
        except (redis.RedisError, TypeError):
            return None

    @property
    def location(self) -> str:
        return f"redis://{MASTER_NAME}/0"

    def settings_options(self, socket_timeout: float = 2) -> dict[str, object]:
        return {"CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": [("127.0.0.1", port) for port in self.ports],
                "SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": socket_timeout}

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        self.processes.clear()
        for server in (self.master, self.replica):
            if server is not None:
                server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)
