"""Scale workloads of django-meepo (issue 14): processing with workers on 1, 2 and 4 "hosts", and pickup latency
on PostgreSQL with the database dispatcher (LISTEN/NOTIFY, and polling).

Both run django-meepo on servers of their own, not on the harness child's MariaDB: ``hosts`` on a private
MariaDB and redis-server listening on a bridge whose other ends are network namespaces (tests/support/hosts.py,
which the acceptance test of many hosts uses too), ``pg-latency`` on the PostgreSQL server with Redis down. So
what needs Django runs in ``bench.scale_helper`` processes configured by their environment, and the workers'
job functions record to a Redis the harness reads (see recorder.py).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from . import procs
from .config import ROOT
from .cpu import Meter
from .djangoproject import MEEPO_LATENCY, MEEPO_NOOP
from .recorder import Probe
from .services import free_port
from .stats import percentile
from .systems import System
from .systems.meepo import SETTINGS, Meepo
from .workloads import Context, Workload, unfinished

log = logging.getLogger(__name__)

HOST_COUNTS = (1, 2, 4)
HOSTS_DATABASE = "bench_hosts"
SLOTS_PER_HOST = 4  # each host runs one meepo_consume --parallel 4, as a real host would
CPU_GROUPS = ("database", "redis", "workers")


class Skipped(RuntimeError):
    """The workload cannot run here (the reason says why); the report lists it as an error of that workload."""


def _meepo(system: System) -> Meepo:
    assert isinstance(system, Meepo), "a django-meepo workload"
    return system


def helper(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """Run ``python -m bench.scale_helper ARGS`` with ``env``; its stdout. Raises with its stderr if it fails."""
    done = subprocess.run([sys.executable, "-m", "bench.scale_helper", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise RuntimeError(f"bench.scale_helper {' '.join(args)} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


# ------------------------------------------------------------------------------------------------ hosts

@contextmanager
def bridge_servers(count: int) -> Iterator[tuple[Any, Any, Any]]:
    """``count`` hosts (network namespaces on a bridge of our own), and a private MariaDB and redis-server that
    listen on the bridge only; all removed afterwards (servers stopped by PID), also after a partial set-up."""
    from tests.support.hosts import Hosts, netns_permitted
    from tests.support.mariadb import PrivateMariaDB
    from tests.support.services import RedisServer

    reason = netns_permitted()
    if reason:
        raise Skipped(reason)
    hosts = Hosts(count).create()
    db = redis = None
    try:
        db = PrivateMariaDB(host=hosts.server_address).install().start()
        db.allow_root_from_anywhere()
        db.create_database(HOSTS_DATABASE)
        redis = RedisServer(host=hosts.server_address).start()
        yield hosts, db, redis
    finally:
        if redis is not None:
            redis.cleanup()
        if db is not None:
            db.cleanup()
        hosts.remove()


def _measure_hosts(meepo: Meepo, ctx: Context, topology: tuple[Any, Any, Any], count: int) -> None:
    """One figure: ``hosts_jobs`` pushed, then drained by one worker on each of ``count`` hosts. The rate is job
    calls over the first-to-last call; CPU is each group's CPU seconds over the same stretch of wall time
    (from the first job's run to the end), in % of one core."""
    hosts, db, redis = topology
    sizes = ctx.config.sizes
    n = sizes.hosts_jobs
    env = {"DJANGO_SETTINGS_MODULE": SETTINGS, "DATABASE_URL": f"mysql://root@{hosts.server_address}:{db.port}",
           "BENCH_DB_NAME": HOSTS_DATABASE, "REDIS_URL": redis.url, "MEEPO_KEY_PREFIX": f"{meepo.prefix}-h{count}"}
    helper(env, "reset")
    helper(env, "push", str(n))
    probe = Probe(f"redis://{hosts.server_address}:{redis.port}/1", f"bench:hosts:{ctx.run}:{uuid.uuid4().hex[:6]}")
    commands = [(f"meepo-host{i}", hosts.command(i, meepo.consume_command(MEEPO_NOOP, SLOTS_PER_HOST)))
                for i in range(count)]
    started = time.monotonic()
    with procs.running(commands, {**env, **probe.env()}) as workers:
        alive = lambda: procs.check_alive(workers)  # noqa: E731
        probe.wait(1, stall=sizes.stall, deadline=started + sizes.time_box, alive=alive, settle=False)
        meter = Meter({"database": [db.process.pid], "redis": [redis.process.pid],
                       "workers": [w.pid for w in workers]})
        meter.start()
        wall = time.monotonic()
        progress = probe.wait(n, stall=sizes.stall, deadline=started + sizes.time_box, alive=alive)
        used, wall = meter.stop(), time.monotonic() - wall
        note = unfinished(progress, n, started, sizes.time_box)
        window = probe.window()
    probe.clear()
    rate = progress.calls / (window[1] - window[0]) if window and window[1] > window[0] else 0.0
    variant = f"{count} host{'' if count == 1 else 's'}"
    ctx.out.add("hosts_processed", rate, run=ctx.run, variant=variant, note=note)
    for group in CPU_GROUPS:
        ctx.out.add(f"hosts_cpu_{group}", used[group] / wall * 100 if wall > 0 else 0.0, run=ctx.run,
                    variant=variant)
    ctx.out.check("hosts", progress, expected=n, run=ctx.run, variant=variant)
    log.info("django-meepo run %d, %d host(s): processed %.0f/s (%d of %d ran); CPU %% of one core: %s",
             ctx.run + 1, count, rate, progress.ran, n,
             ", ".join(f"{g} {used[g] / wall * 100:.0f}" for g in CPU_GROUPS) if wall > 0 else "-")


def hosts(system: System, ctx: Context) -> None:
    """Workers on 1, 2 and 4 hosts (one ``meepo_consume --parallel 4`` each) drain ``hosts_jobs`` no-op jobs
    from a MariaDB and a Redis reached over the hosts' links (→ hosts_processed per host count, and the CPU the
    database, Redis and the workers used meanwhile: what bounds the curve)."""
    meepo = _meepo(system)
    with bridge_servers(max(HOST_COUNTS)) as topology:
        helper(_hosts_migrate_env(meepo, topology), "migrate")
        for count in HOST_COUNTS:
            _measure_hosts(meepo, ctx, topology, count)


def _hosts_migrate_env(meepo: Meepo, topology: tuple[Any, Any, Any]) -> dict[str, str]:
    hosts, db, redis = topology
    return {"DJANGO_SETTINGS_MODULE": SETTINGS, "DATABASE_URL": f"mysql://root@{hosts.server_address}:{db.port}",
            "BENCH_DB_NAME": HOSTS_DATABASE, "REDIS_URL": redis.url, "MEEPO_KEY_PREFIX": meepo.prefix}


# ------------------------------------------------------------------------------------------- pg-latency

def ensure_pg_database(url: str, name: str) -> None:
    try:
        import psycopg
    except ImportError:
        raise Skipped("psycopg is not installed (pip install -e '.[bench]' installs it)") from None
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r}: letters, digits and underscores only")
    try:
        conn = psycopg.connect(f"{url.rstrip('/')}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise Skipped(f"PostgreSQL at {url} cannot be reached: {exc}") from None
    with conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def _pg_env(meepo: Meepo, ctx: Context) -> dict[str, str]:
    services = ctx.config.services
    return {"DJANGO_SETTINGS_MODULE": SETTINGS, "DATABASE_URL": services.postgres_url,
            "BENCH_DB_NAME": f"{services.meepo_db}_pg", "MEEPO_KEY_PREFIX": f"{meepo.prefix}-pg",
            "BENCH_MEEPO_DISPATCH": "database",
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens there: Redis is down


def _latency_command(meepo: Meepo, mode: str) -> list[str]:
    if mode == "listen":
        return meepo.consume_command(MEEPO_LATENCY, 4)
    return [sys.executable, "-m", "bench.scale_helper", "consume-polling", MEEPO_LATENCY, "--parallel", "4"]


def _pg_latency_mode(meepo: Meepo, ctx: Context, env: dict[str, str], mode: str) -> list[float]:
    """Pickup latencies (ms) of ``latency_samples`` jobs pushed one per transaction to an idle worker."""
    sizes = ctx.config.sizes
    helper(env, "reset")
    with ctx.probe(meepo) as probe, procs.running([(f"meepo-pg-{mode}", _latency_command(meepo, mode))],
                                                  {**env, **probe.env()}) as workers:
        alive = lambda: procs.check_alive(workers)  # noqa: E731
        helper(env, "latency", "1", "0")  # warm-up: the worker is up and idle once it ran
        probe.wait(1, stall=sizes.stall, alive=alive)
        committed = {int(k): v for k, v in
                     json.loads(helper(env, "latency", str(sizes.latency_samples), str(sizes.latency_gap))).items()}
        progress = probe.wait(sizes.latency_samples + 1, stall=sizes.stall, alive=alive)
        starts = probe.starts()
    ctx.out.check(f"pg-latency-{mode}", progress, expected=sizes.latency_samples + 1, run=ctx.run)
    return [(starts[i] - at) * 1000 for i, at in committed.items() if i in starts]


def pg_latency(system: System, ctx: Context) -> None:
    """An idle worker (1 process × 4) with ``DISPATCH = "database"`` on PostgreSQL and Redis down:
    ``latency_samples`` jobs pushed one per transaction, ``latency_gap`` s apart; each one's latency is its
    function's start minus its commit. Once woken by LISTEN/NOTIFY (→ pg_listen_p50, p95), once polling at the
    default POLL_INTERVAL (→ pg_poll_p50, p95)."""
    meepo = _meepo(system)
    env = _pg_env(meepo, ctx)
    ensure_pg_database(ctx.config.services.postgres_url, env["BENCH_DB_NAME"])
    helper(env, "migrate")
    for mode in ("listen", "poll"):
        millis = _pg_latency_mode(meepo, ctx, env, mode)
        if not millis:
            continue
        ctx.out.add(f"pg_{mode}_p50", percentile(millis, 0.50), run=ctx.run)
        ctx.out.add(f"pg_{mode}_p95", percentile(millis, 0.95), run=ctx.run)
        log.info("django-meepo run %d, PostgreSQL %s: pickup latency p50 %.1f ms, p95 %.1f ms (%d jobs)",
                 ctx.run + 1, mode, percentile(millis, 0.5), percentile(millis, 0.95), len(millis))
    helper(env, "reset")


def _meepo_only(cls: type[System]) -> bool:
    return cls is Meepo


SCALE: Sequence[Workload] = (
    Workload("hosts", hosts, _meepo_only),
    Workload("pg-latency", pg_latency, _meepo_only),
)
