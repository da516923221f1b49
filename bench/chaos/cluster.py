"""The ``cluster`` topology of a chaos run: a Redis Cluster of 3 masters and 3 replicas of the run's own.

Nodes are ``procs.Redis`` servers with ``--cluster-enabled yes`` on ports whose cluster bus (port + 10000) is free
too, formed by ``redis-cli --cluster create --cluster-replicas 1 --cluster-yes``; each keeps its ``nodes.conf`` in
its own directory, so a node killed and started again rejoins the Cluster (empty: no persistence), as a replica
when its replica took over meanwhile. Producers and workers reach it through ``MEEPO_REDIS_CLUSTER``
(``MEEPO["REDIS_CLUSTER"]``, redis-py's ``RedisCluster``). The drills:

* :meth:`ClusterRedis.failover` — kill -9 of the master serving one of the run's tasks, wait for its replica to
  take over, start the old master again (it comes back as the new master's replica);
* :meth:`ClusterRedis.migrate` — move the slot of one of the run's tasks to another master key by key
  (``CLUSTER SETSLOT … IMPORTING/MIGRATING``, ``MIGRATE``, ``SETSLOT … NODE``), while jobs flow.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from redis.crc import key_slot

from .procs import TASKS, Redis

NODE_TIMEOUT_MS = 1000
PROMOTION_TIMEOUT = 30.0
_CLUSTER_ARGS = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout",
                 str(NODE_TIMEOUT_MS), "--cluster-require-full-coverage", "no",
                 "--cluster-replica-validity-factor", "0")


def free_pair() -> int:
    """A port free for a node and for its cluster bus (port + 10000)."""
    for _ in range(200):
        port = random.SystemRandom().randint(20000, 29999)
        with contextlib.ExitStack() as stack:
            try:
                for p in (port, port + 10000):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", p))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` every 0.1 s until it is true; RuntimeError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class ClusterRedis:
    servers: list[Redis] = field(default_factory=lambda: [Redis(port=free_pair(), extra_args=_CLUSTER_ARGS)
                                                          for _ in range(6)])
    closed: bool = False
    formed: bool = False

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": f"redis://127.0.0.1:{self.servers[0].port}/0",
                "MEEPO_REDIS_CLUSTER": ",".join(f"redis://127.0.0.1:{s.port}" for s in self.servers)}

    @property
    def url(self) -> str:
        return self.env()["REDIS_URL"]

    @property
    def proc(self) -> object | None:
        """None while a node is down (the drain starts it again), else the first node's process."""
        if any(s.proc is None or not s.proc.alive() for s in self.servers):
            return None
        return self.servers[0].proc

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A client of the first master (the standalone faults, which would use it, do not apply here)."""
        return next(s for s in self.servers if self._role(s) == "master").client(timeout)

    def start(self) -> None:
        if self.closed:
            raise RuntimeError("the run is over: the Redis Cluster is not started again")
        for server in self.servers:
            if server.proc is None or not server.proc.alive():
                server.start()
        if not self.formed:
            cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
            subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in self.servers),
                            "--cluster-replicas", "1", "--cluster-yes"], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.STDOUT, timeout=60)
            self.formed = True
        wait_for(self._ok, 60, "the Redis Cluster to be ok on every node with every replica in sync")

    def _ok(self) -> bool:
        with contextlib.suppress(redis.RedisError):
            infos = [s.client().info("replication") for s in self.servers]
            states = [s.client().cluster("info").get("cluster_state") for s in self.servers]
            replicas = [i for i in infos if i.get("role") == "slave"]
            return states == ["ok"] * len(states) and len(replicas) == 3 and \
                all(i.get("master_link_status") == "up" for i in replicas)
        return False

    @staticmethod
    def slot(prefix: str, task: str) -> int:
        return int(key_slot(f"{{{prefix}:{task}}}".encode()))

    def owner(self, slot: int) -> Redis:
        for s in self.servers:
            with contextlib.suppress(redis.RedisError, AttributeError):
                for start, end, master, *_ in s.client().execute_command("CLUSTER", "SLOTS"):
                    if int(start) <= slot <= int(end):
                        return next(x for x in self.servers if x.port == int(master[1]))
        raise RuntimeError(f"no node knows who serves slot {slot}")


    @staticmethod
    def _node_id(server: Redis) -> str:
        return str(server.client().execute_command("CLUSTER", "MYID").decode())

    def _role(self, server: Redis) -> str | None:
        with contextlib.suppress(redis.RedisError):
            return str(server.client().info("replication").get("role"))
        return None

    def failover(self, prefix: str, rng: random.Random) -> str:
        """kill -9 of the master of one of the run's tasks; its replica takes over; the old master comes back."""
        task = rng.choice(TASKS)
        slot = self.slot(prefix, task)
        old = self.owner(slot)
        started = time.monotonic()
        old.kill()
        wait_for(lambda: self._promoted(slot, old), PROMOTION_TIMEOUT,
                 f"a replica to take over slot {slot} after killing the master on port {old.port}")
        promoted = time.monotonic() - started
        new = self.owner(slot)
        old.start()  # rejoins from its nodes.conf, empty, as the new master's replica
        wait_for(self._ok, 60, "the old master to rejoin as a replica and sync")
        return (f"master :{old.port} of {task!r} killed; :{new.port} took over after {promoted:.1f} s; the old "
                f"master is back, empty, as its replica ({self._role(old)})")

    def _promoted(self, slot: int, old: Redis) -> bool:
        with contextlib.suppress(RuntimeError):
            new = self.owner(slot)
            return new is not old and self._role(new) == "master"
        return False

    def migrate(self, prefix: str, rng: random.Random) -> str:
        """Move the slot of one of the run's tasks to another master, one key at a time."""
        task = rng.choice(TASKS)
        slot = self.slot(prefix, task)
        source = self.owner(slot)
        targets = [s for s in self.servers if s is not source and self._role(s) == "master"]
        target = rng.choice(targets)
        src, dst = source.client(10), target.client(10)
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", self._node_id(source))
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", self._node_id(target))
        moved = 0
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1):
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            time.sleep(0.05)
        target_id = self._node_id(target)
        for s in [target, source, *(x for x in self.servers if x not in (source, target))]:
            if self._role(s) == "master":
                s.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        wait_for(lambda: self.owner(slot) is target, 30, f"slot {slot} to be served by :{target.port}")
        return f"slot {slot} of {task!r} moved from :{source.port} to :{target.port} ({moved} keys)"

    def cleanup(self) -> None:
        self.closed = True
        for server in self.servers:
            server.cleanup()
