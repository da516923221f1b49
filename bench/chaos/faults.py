"""The faults of a chaos run: a registry, name → :class:`Fault` (what it does and whose runs it can interrupt).

Each function acts on a :class:`Target` (the run's Redis, its fleet of workers, its database) and returns an
:class:`Effect` naming the processes and jobs it hit. The runner times it and turns it into a
``checker.FaultEvent``. A fault that raises is recorded with its error and the run goes on (a fault is a test
input, not the system under test).

A fault names the Redis topologies it applies to (``topologies``; None: any, see topology.py): the faults that
kill or flush the one redis-server are the ``standalone`` topology's; the drills of other topologies (Sentinel
and Cluster here) are theirs, so each topology's default set is what makes sense for it.
"""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .procs import Fleet, Redis
from .topology import ClusterRedis, SentinelRedis

REDIS_SOCKET_TIMEOUT = 2.0  # the children's MEEPO_REDIS_SOCKET_TIMEOUT; DEBUG SLEEP lasts longer
CLOCK_SKEW = 45.0  # seconds ahead: far more than a lease (3 s)


class Target(Protocol):
    redis: Redis | SentinelRedis | ClusterRedis
    fleet: Fleet
    rng: random.Random

    @property
    def total_seconds(self) -> float: ...

    def kill_db_sessions(self) -> int: ...
    def doing_jobs(self, limit: int) -> list[int]: ...
    def push_rolled_back(self, count: int) -> list[int]: ...
    def push_poison(self) -> list[int]: ...
    def operator(self, verb: str, job_ids: list[int]) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class Effect:
    pids: frozenset[int] | None = None  # None: any process's runs
    job_ids: frozenset[int] | None = None  # None: any job's runs
    detail: str = ""
    reruns: bool = False  # an operator asked for new runs of job_ids (a repush)


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    run: Callable[[Target], Effect]
    interrupts: bool  # may it make a run that had begun run again (an explained duplicate)?
    redis: bool = False  # acts on Redis (left out of the default set with --dispatch database)
    doc: str = ""
    topologies: frozenset[str] | None = None  # the Redis topologies it applies to (None: any)


REGISTRY: dict[str, Fault] = {}


def fault(name: str, *, interrupts: bool, redis: bool = False, topologies: tuple[str, ...] | None = None,
          ) -> Callable[[Callable[[Target], Effect]], Callable[[Target], Effect]]:
    def register(fn: Callable[[Target], Effect]) -> Callable[[Target], Effect]:
        REGISTRY[name] = Fault(name, fn, interrupts, redis, (fn.__doc__ or "").strip(),
                               frozenset(topologies) if topologies is not None else None)
        return fn
    return register


STANDALONE = ("standalone",)


def _standalone(t: Target) -> Redis:
    if not isinstance(t.redis, Redis):
        raise RuntimeError("this fault acts on the one redis-server of the standalone topology")
    return t.redis


def redis_stop_seconds(total_seconds: float) -> float:
    """15 s, scaled down for short runs (a sixth of the run, at least 3 s)."""
    return max(3.0, min(15.0, total_seconds / 6))


@fault("flushall", interrupts=True, redis=True, topologies=STANDALONE)
def flushall(t: Target) -> Effect:
    """FLUSHALL on the run's Redis."""
    _standalone(t).client().flushall()
    return Effect(detail="FLUSHALL")


@fault("redis_kill9_restart_empty", interrupts=True, redis=True, topologies=STANDALONE)
def redis_kill9_restart_empty(t: Target) -> Effect:
    """kill -9 of redis-server, started again at once, empty."""
    server = _standalone(t)
    server.kill()
    server.start()
    return Effect(detail="killed and restarted empty")


@fault("redis_stop_15s", interrupts=True, redis=True, topologies=STANDALONE)
def redis_stop_15s(t: Target) -> Effect:
    """redis-server killed, started again empty after 15 s (scaled down for short runs)."""
    seconds = redis_stop_seconds(t.total_seconds)
    server = _standalone(t)
    server.kill()
    time.sleep(seconds)
    server.start()
    return Effect(detail=f"down {seconds:g} s")


@fault("redis_debug_sleep", interrupts=True, redis=True, topologies=STANDALONE)
def redis_debug_sleep(t: Target) -> Effect:
    """DEBUG SLEEP longer than the workers' socket timeout: Redis hangs, it does not refuse."""
    seconds = REDIS_SOCKET_TIMEOUT * 2
    with contextlib.suppress(Exception):  # our own client's answer may come late; the stall happened anyway
        _standalone(t).client(timeout=seconds + 10).execute_command("DEBUG", "SLEEP", seconds)
    return Effect(detail=f"DEBUG SLEEP {seconds:g}")


@fault("sentinel_failover", interrupts=True, redis=True, topologies=("sentinel",))
def sentinel_failover(t: Target) -> Effect:
    """kill -9 of the Sentinel master while jobs flow: the sentinels promote the replica, producers and workers
    follow it (django-redis's SentinelClient); what the replica had not received is lost and swept back. The
    old master comes back, empty, as the new master's replica."""
    if not isinstance(t.redis, SentinelRedis):
        raise RuntimeError("sentinel_failover needs --topology sentinel")
    return Effect(detail=t.redis.failover())


def _cluster(t: Target) -> ClusterRedis:
    if not isinstance(t.redis, ClusterRedis):
        raise RuntimeError("this drill needs --topology cluster")
    return t.redis


@fault("cluster_failover", interrupts=True, redis=True, topologies=("cluster",))
def cluster_failover(t: Target) -> Effect:
    """kill -9 of the Cluster master serving one of the run's tasks while jobs flow: its replica takes over,
    RedisCluster follows it; what the replica had not received is lost and swept back. The old master comes back,
    empty, as the new master's replica."""
    return Effect(detail=_cluster(t).failover(t.fleet.env["MEEPO_KEY_PREFIX"], t.rng))


@fault("cluster_slot_migration", interrupts=False, redis=True, topologies=("cluster",))
def cluster_slot_migration(t: Target) -> Effect:
    """The slot of one of the run's tasks moves to another master key by key while jobs flow (ASK and TRYAGAIN
    redirects meanwhile); nothing is lost, and no run begins twice because of it."""
    return Effect(detail=_cluster(t).migrate(t.fleet.env["MEEPO_KEY_PREFIX"], t.rng))


def _victim(t: Target) -> Any:
    live = [p for p in t.fleet.consumers if p.alive()]
    if not live:
        raise RuntimeError("no live consumer to signal")
    return t.rng.choice(live)


@fault("worker_sigkill", interrupts=True)
def worker_sigkill(t: Target) -> Effect:
    """SIGKILL of one consumer (chosen by the seed); a replacement starts at once."""
    victim = _victim(t)
    t.fleet.retire(victim)
    victim.signal(signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        victim.popen.wait(timeout=10)
    t.fleet.start_consumer()
    return Effect(pids=frozenset({victim.pid}), detail=f"pid {victim.pid}")


@fault("worker_sigterm", interrupts=True)
def worker_sigterm(t: Target) -> Effect:
    """SIGTERM of one consumer (it finishes or hands back its jobs within --grace 2 s); then a replacement."""
    victim = _victim(t)
    t.fleet.retire(victim)
    victim.signal(signal.SIGTERM)
    code: int | str
    try:
        code = victim.popen.wait(timeout=30)
    except subprocess.TimeoutExpired:
        code = "still running after 30 s"
    t.fleet.start_consumer()
    return Effect(pids=frozenset({victim.pid}), detail=f"pid {victim.pid}, exit {code}")


@fault("kill_db_connections", interrupts=True)
def kill_db_connections(t: Target) -> Effect:
    """KILL CONNECTION of every session on the run's database but the tool's own (information_schema)."""
    return Effect(detail=f"{t.kill_db_sessions()} session(s) killed")


@fault("clock_ahead", interrupts=False)
def clock_ahead(t: Target) -> Effect:
    """One more consumer whose wall clock runs 45 s ahead, until the end of the run (leases use the
    database's clock, so it must cause no second run). One at a time: while it runs, this fault adds nothing."""
    running = [p for p in t.fleet.consumers if p.alive() and p.name.endswith("-skewed")]
    if running:
        return Effect(pids=frozenset({running[0].pid}), detail=f"pid {running[0].pid} still runs ahead")
    proc = t.fleet.start_consumer(skew=CLOCK_SKEW)
    return Effect(pids=frozenset({proc.pid}), detail=f"pid {proc.pid} at {CLOCK_SKEW:+g} s")


@fault("rollback_pushes", interrupts=False)
def rollback_pushes(t: Target) -> Effect:
    """A transaction of 20 pushes rolled back (the steady pushes also roll back one transaction in ten)."""
    ids = t.push_rolled_back(20)
    return Effect(job_ids=frozenset(ids), detail=f"{len(ids)} pushes rolled back")


@fault("poison", interrupts=False)
def poison(t: Target) -> Effect:
    """Two poison jobs: a result over max_allowed_packet and one with a lone surrogate."""
    ids = t.push_poison()
    return Effect(job_ids=frozenset(ids), detail=f"jobs {', '.join(map(str, ids))}")


def _operator(t: Target, verb: str) -> Effect:
    ids = t.doing_jobs(3)
    acted = t.operator(verb, ids)
    return Effect(job_ids=frozenset(ids), detail=f"{verb} of running jobs {ids}: {len(acted)} applied",
                  reruns=verb == "repush")


@fault("operator_repush", interrupts=True)
def operator_repush(t: Target) -> Effect:
    """django_meepo.api.repush of up to three running jobs (fencing off the copy that runs)."""
    return _operator(t, "repush")


@fault("operator_commit", interrupts=True)
def operator_commit(t: Target) -> Effect:
    """django_meepo.api.operator_commit(…, "done") of up to three running jobs."""
    return _operator(t, "commit")


def names(dispatch: str, topology: str = "standalone") -> list[str]:
    """The default faults for a dispatch mode and Redis topology: all that apply to the topology (none of
    Redis's with the database dispatcher)."""
    return [n for n, f in REGISTRY.items() if not (dispatch == "database" and f.redis)
            and (f.topologies is None or topology in f.topologies)]


def parse(text: str, topology: str = "standalone") -> list[str]:
    """``a,b,c`` → names; raises ValueError naming every unknown fault and listing the known ones, or a fault
    of another topology than the run's."""
    wanted = [n.strip() for n in text.split(",") if n.strip()]
    if not wanted:
        raise ValueError("--faults names no fault")
    unknown = [n for n in wanted if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(map(repr, unknown))}; known: {', '.join(REGISTRY)}")
    elsewhere = [n for n in wanted if REGISTRY[n].topologies is not None and topology not in REGISTRY[n].topologies]
    if elsewhere:
        needed = sorted({t for n in elsewhere for t in REGISTRY[n].topologies or ()})
        raise ValueError(f"fault(s) {', '.join(map(repr, elsewhere))} do not apply to --topology {topology} "
                         f"(they need {', '.join(needed)})")
    return list(dict.fromkeys(wanted))


@dataclass(slots=True)
class Slot:
    """One planned firing: after ``runs`` more finished runs, or at the latest ``gap`` seconds after the last."""

    name: str
    runs: int
    gap: float
    fired_by: str = field(default="")


def cost(name: str, total_seconds: float) -> float:
    """About how long a fault takes to fire (the plan leaves time for it)."""
    return {"redis_stop_15s": redis_stop_seconds(total_seconds), "redis_debug_sleep": 2 * REDIS_SOCKET_TIMEOUT,
            "worker_sigterm": 3.0, "sentinel_failover": 6.0, "cluster_failover": 8.0,
            "cluster_slot_migration": 2.0}.get(name, 0.2)


def plan(chosen: list[str], total_seconds: float, rng: random.Random) -> list[Slot]:
    """Every chosen fault at least once, more for long runs (one slot per ~6 s), in a seeded order; the gaps
    leave room for the faults' own durations, so every slot fits in the run."""
    count = max(len(chosen), int(total_seconds / 6))
    order = list(chosen) + [rng.choice(chosen) for _ in range(count - len(chosen))]
    rng.shuffle(order)
    busy = sum(cost(n, total_seconds) for n in order)
    mean_gap = max(0.3, (total_seconds * 0.8 - busy) / len(order))
    return [Slot(n, rng.randint(5, 60), rng.uniform(0.5, 1.5) * mean_gap) for n in order]
