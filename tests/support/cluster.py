"""A Redis Cluster owned by one test: 3 masters and 3 replicas (``redis-server --cluster-enabled yes``), formed by
``redis-cli --cluster create --cluster-replicas 1 --cluster-yes``, on free ports (each node's cluster bus is its
port + 10000, so both must be free).

Every server is started here and stopped by PID (``RedisServer``); each keeps its ``nodes.conf`` in a directory of
its own, removed afterwards. ``fail_over`` kills a master with SIGKILL and waits for its replica to take over;
``migrate_slot`` moves one slot to another master key by key (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE,
SETSLOT NODE), as ``redis-cli --cluster reshard`` does, with a pause between keys so clients meet it mid-way.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from .services import RedisServer, wait_until

NODE_TIMEOUT_MS = 1000


def free_cluster_port() -> int:
    """A port free for the node and for its cluster bus (port + 10000)."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        sockets = []
        try:
            for p in (port, port + 10000):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port pair for a Redis Cluster node")


def cluster_server() -> RedisServer:
    port = free_cluster_port()
    return RedisServer(port=port, extra_args=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                              "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                                              "--cluster-require-full-coverage", "no",
                                              # A replica fails over however long ago it last heard its master.
                                              "--cluster-replica-validity-factor", "0"))


@dataclass
class Cluster:
    masters: int = 3
    replicas: int = 1
    servers: list[RedisServer] = field(default_factory=list)

    def start(self) -> Cluster:
        for _ in range(self.masters * (1 + self.replicas)):
            self.servers.append(cluster_server().start())
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in self.servers),
                        "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=60)
        wait_until(self.healthy, timeout=60, message="the Redis Cluster to be formed (cluster_state:ok everywhere)")
        wait_until(self._replicas_in_sync, timeout=60, message="every replica to sync with its master")
        return self

    def _replicas_in_sync(self) -> bool:
        try:
            infos = [s.client().info("replication") for s in self.alive()]
        except redis.RedisError:
            return False
        replicas = [i for i in infos if i.get("role") == "slave"]
        return len(replicas) == self.masters * self.replicas and all(i.get("master_link_status") == "up"
                                                                    for i in replicas)

    @property
    def nodes(self) -> list[str]:
        return [f"redis://127.0.0.1:{s.port}" for s in self.servers]

    def alive(self) -> list[RedisServer]:
        return [s for s in self.servers if s.process is not None and s.process.poll() is None]

    def healthy(self) -> bool:
        """Every running node says cluster_state:ok."""
        try:
            return all(s.client().cluster("info").get("cluster_state") == "ok" for s in self.alive())
        except redis.RedisError:
            return False

    def client(self) -> RedisCluster:
        s = self.alive()[0]
        return RedisCluster(host="127.0.0.1", port=s.port, socket_timeout=2, socket_connect_timeout=2)

    def node_id(self, server: RedisServer) -> str:
        return str(server.client().execute_command("CLUSTER", "MYID").decode())

    def owner(self, slot: int) -> RedisServer:
        """The master serving ``slot`` now, as a running node sees it."""
        for s in self.alive():
            try:
                for start, end, master, *_ in s.client().execute_command("CLUSTER", "SLOTS"):
                    if int(start) <= slot <= int(end):
                        port = int(master[1])
                        return next(x for x in self.servers if x.port == port)
            except redis.RedisError:
                continue
        raise AssertionError(f"no node knows who serves slot {slot}")

    def replica_of(self, master: RedisServer) -> RedisServer:
        mid = self.node_id(master)
        for s in self.alive():
            line = next(line for line in s.client().execute_command("CLUSTER", "NODES").decode().splitlines()
                        if "myself" in line.split()[2])
            if line.split()[3] == mid:
                return s
        raise AssertionError(f"master on port {master.port} has no replica")

    def fail_over(self, master: RedisServer) -> RedisServer:
        """SIGKILL ``master``; returns its replica once that serves the master's slots and the cluster is ok."""
        replica = self.replica_of(master)
        master.stop()  # kill -9: what it had not yet sent to its replica is gone
        wait_until(lambda: self._is_master(replica) and self.healthy(), timeout=60,
                   message=f"the replica on port {replica.port} to take over from the killed master")
        return replica

    @staticmethod
    def _is_master(server: RedisServer) -> bool:
        try:
            return server.client().info("replication").get("role") == "master"
        except redis.RedisError:
            return False

    def migrate_slot(self, slot: int, target: RedisServer, pause: float = 0.05) -> int:
        """Move ``slot`` from its master to ``target`` (another master), one key at a time; returns how many keys
        moved. Clients meet ASK redirects (and TRYAGAIN for scripts whose keys are split) meanwhile."""
        source = self.owner(slot)
        assert source is not target, "the slot is already on the target"
        src, dst = source.client(), target.client()
        src_id, dst_id = self.node_id(source), self.node_id(target)
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        moved = 0
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1):
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            time.sleep(pause)
        for s in (dst, src):
            s.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        for s in self.alive():  # tell the other masters at once instead of through gossip
            if s not in (source, target) and self._is_master(s):
                s.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        wait_until(lambda: self.owner(slot) is target, timeout=30, message=f"slot {slot} to be served by the target")
        return moved

    def stop(self) -> None:
        for server in self.servers:
            server.cleanup()
        self.servers.clear()


def slot_of(prefix: str, task: str) -> int:
    """The Cluster slot of ``task``'s keys (its hash tag ``{prefix:task}``)."""
    return int(key_slot(f"{{{prefix}:{task}}}".encode()))
