"""The schedule of a chaos run: start everything, push jobs while seeded faults fire, drain, check, stop.

The main thread pushes small transactions of ``chaos`` jobs (one in ten rolled back when ``rollback_pushes`` is
among the faults) until the run's time is up. A fault thread walks the seeded plan (``faults.plan``): each slot
fires after its number of further finished runs, or at the latest after its gap in seconds, whichever comes
first, and is recorded as a ``FaultEvent`` with its times. Then the tool waits for every committed job to end
(Redis is up again by then), reads the history back and hands it to the checker.

The tool's own database sessions are remembered (``connection_created``) so that ``kill_db_connections`` kills
only the workers' sessions (and the jobs' history connections, which must survive it).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import faults as fault_registry
from . import history
from .checker import Check, FaultEvent, check, passed, table
from .procs import Fleet, Redis
from .topology import TOPOLOGIES, ClusterRedis, SentinelRedis

log = logging.getLogger("bench.chaos")
DRAIN_SECONDS = 180.0
PUSH_EVERY = 0.3


@dataclass
class Config:
    minutes: float
    seed: int
    dispatch: str  # redis | database | failover
    faults: list[str]
    database_url: str
    keep: bool = False
    topology: str = "standalone"  # the run's Redis: standalone | sentinel | cluster (topology.TOPOLOGIES)

    @property
    def database(self) -> str:
        suffix = "" if self.topology == "standalone" else f"_{self.topology}"
        return f"meepo_chaos_{self.seed}_{self.dispatch}{suffix}"


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Runner:
    config: Config
    redis: Redis | SentinelRedis | ClusterRedis = field(init=False)
    rng: random.Random = field(init=False)  # the faults' (their thread's): plan, victims, targets
    push_rng: random.Random = field(init=False)  # the main thread's: jobs, transactions, rollbacks
    fleet: Fleet = field(init=False)
    committed: set[int] = field(default_factory=set)
    rolled_back: set[int] = field(default_factory=set)
    operator_committed: set[int] = field(default_factory=set)
    events: list[FaultEvent] = field(default_factory=list)
    own_sessions: set[int] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    started_at: datetime = field(default_factory=now)
    fault_thread: threading.Thread | None = None
    exited: list[str] = field(default_factory=list)  # workers that exited on their own (a finding, not a fault)

    def __post_init__(self) -> None:
        self.push_rng = random.Random(self.config.seed)
        self.rng = random.Random(self.config.seed * 7919 + 1)
        self.redis = TOPOLOGIES[self.config.topology]()

    @property
    def total_seconds(self) -> float:
        return self.config.minutes * 60

    # ------------------------------------------------------------------ setup and teardown
    def env(self) -> dict[str, str]:
        c = self.config
        return {"DATABASE_URL": history.database_url(c.database_url, c.database), "MEEPO_DB_NAME": c.database,
                **self.redis.env(), "MEEPO_KEY_PREFIX": f"chaos{c.seed}",
                "MEEPO_DISPATCH": "database" if c.dispatch == "database" else "redis",
                "MEEPO_REDIS_SOCKET_TIMEOUT": str(fault_registry.REDIS_SOCKET_TIMEOUT),
                "DJANGO_SETTINGS_MODULE": "testproject.settings", "MEEPO_LOG_LEVEL": "INFO"}

    def setup(self) -> None:
        """The database, Redis, Django in this process, then the workers (2 or 3 consumers, 1 or 2 sweepers)."""
        history.create_database(self.config.database_url, self.config.database)
        self.redis.start()
        os.environ.update({**self.env(), "MEEPO_LOG_LEVEL": "ERROR"})  # the workers log INFO to their files
        import django
        from django.core.management import call_command
        from django.db.backends.signals import connection_created

        django.setup()
        connection_created.connect(self._own_session, weak=False)
        call_command("migrate", verbosity=0)
        self.fleet = Fleet(self.env(), redis_only=self.config.dispatch == "redis")
        for _ in range(self.push_rng.choice((2, 3))):
            self.fleet.start_consumer()
        for _ in range(self.push_rng.choice((1, 2))):
            self.fleet.start_sweeper()

    def _own_session(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT CONNECTION_ID()")
            self.own_sessions.add(int(cursor.fetchone()[0]))

    def teardown(self) -> None:
        """Stop every process this run started (by PID), drop its database unless kept. The fault thread is
        told to stop and waited for (briefly); whatever it tries after this is refused (``closed``)."""
        self.stop.set()
        if self.fault_thread is not None:
            self.fault_thread.join(timeout=20)
        fleet = getattr(self, "fleet", None)
        if fleet is not None:
            fleet.stop_all()
        self.redis.cleanup()
        from django.db import connections

        connections.close_all()
        if fleet is not None:
            fleet.cleanup(keep_logs=self.config.keep)
        if not self.config.keep:
            history.drop_database(self.config.database_url, self.config.database)

    # ------------------------------------------------------------------ what the faults act through (Target)
    def kill_db_sessions(self) -> int:
        from django.db import connection

        killed = 0
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
                           [self.config.database])
            for (session,) in cursor.fetchall():
                if int(session) in self.own_sessions:
                    continue
                try:
                    cursor.execute(f"KILL CONNECTION {int(session)}")
                    killed += 1
                except Exception:  # gone meanwhile
                    continue
        return killed

    def doing_jobs(self, limit: int) -> list[int]:
        from django_meepo.models import Job

        ids = list(Job.objects.filter(task="chaos", status="doing").values_list("id", flat=True)[:50])
        return sorted(self.rng.sample(ids, min(limit, len(ids))))

    def operator(self, verb: str, job_ids: list[int]) -> list[int]:
        from django_meepo import api

        acted = []
        for job_id in job_ids:
            try:
                if verb == "repush":
                    api.repush(job_id)
                else:
                    api.operator_commit(job_id, "done")
                    self.operator_committed.add(job_id)
                acted.append(job_id)
            except api.MeepoError as exc:  # it finished or moved meanwhile: refused, nothing written
                log.info("operator %s of job %d refused: %s", verb, job_id, exc)
        return acted

    def push_rolled_back(self, count: int) -> list[int]:
        return self._push("chaos", [{"sleep": 0.05}] * count, commit=False)

    def push_poison(self) -> list[int]:
        return self._push("chaos_poison", [{"kind": "huge"}, {"kind": "surrogate"}], commit=True)

    # ------------------------------------------------------------------ pushing
    def _payload(self) -> dict[str, float]:
        roll = self.push_rng.random()
        if roll < 0.70:
            return {"sleep": round(self.push_rng.uniform(0.02, 0.2), 3)}
        if roll < 0.95:
            return {"sleep": round(self.push_rng.uniform(0.5, 1.5), 3)}
        return {"sleep": round(self.push_rng.uniform(3.0, 5.0), 3)}  # longer than a lease: lives on heartbeats

    def _push(self, task: str, payloads: list[dict[str, Any]], *, commit: bool) -> list[int]:
        """Push in one transaction; committed or rolled back. Ids are noted before the outcome is known only for
        rolled-back ones (a rollback cannot half-happen); a commit that raises leaves its ids out of both sets."""
        from django.db import transaction

        from django_meepo.models import Job

        class Rollback(Exception):
            pass

        ids: list[int] = []
        try:
            with transaction.atomic():
                ids = [Job.objects.push(task, json=p).id for p in payloads]
                if not commit:
                    raise Rollback
        except Rollback:
            self.rolled_back.update(ids)
            return ids
        self.committed.update(ids)
        return ids

    def push_loop(self) -> None:
        rollback = "rollback_pushes" in self.config.faults
        deadline = time.monotonic() + self.total_seconds
        while time.monotonic() < deadline and not self.stop.is_set():
            payloads = [self._payload() for _ in range(self.push_rng.randint(1, 6))]
            try:
                self._push("chaos", payloads, commit=not (rollback and self.push_rng.random() < 0.1))
            except Exception as exc:  # e.g. the database stalled: the tool goes on; the checker judges jobs
                log.warning("a push transaction failed (%s: %s); its jobs are not counted", type(exc).__name__, exc)
            self.note_exits()
            time.sleep(PUSH_EVERY)

    def note_exits(self) -> None:
        """Replace workers that exited on their own; skipped while a fault holds the fleet (pushes go on)."""
        if not self.lock.acquire(blocking=False):
            return
        try:
            for proc in self.fleet.replace_dead():
                line = f"{proc.name} pid {proc.pid} exited on its own (code {proc.popen.returncode}); replaced"
                self.exited.append(line)
                log.warning("%s; its log: %s", line, proc.log)
        finally:
            self.lock.release()

    # ------------------------------------------------------------------ faults
    def finished_runs(self) -> int:
        """How many runs returned so far (the faults' progress); -1 when the count could not be read (the slot
        then waits for its gap in seconds instead)."""
        from django.db import connection

        from testproject.models import ChaosRun

        try:
            return ChaosRun.objects.filter(ended__isnull=False).count()
        except Exception as exc:
            log.warning("could not count the finished runs (%s); the next fault fires by time", exc)
            connection.close()
            return -1

    def fault_loop(self) -> None:
        slots = fault_registry.plan(self.config.faults, self.total_seconds, self.rng)
        end = time.monotonic() + self.total_seconds
        for slot in slots:
            base, since = self.finished_runs(), time.monotonic()
            while not self.stop.is_set() and time.monotonic() < end:
                done = self.finished_runs() - base
                if base >= 0 and done >= slot.runs:
                    slot.fired_by = f"after {done} more finished runs"
                    break
                if time.monotonic() - since >= slot.gap:
                    slot.fired_by = f"after {slot.gap:.1f} s"
                    break
                time.sleep(0.2)
            else:
                left = slots[slots.index(slot):]
                print(f"  {len(left)} planned fault(s) did not fire before the end: "
                      f"{', '.join(s.name for s in left)}", flush=True)
                return
            self.fire(slot.name, slot.fired_by)

    def fire(self, name: str, why: str) -> None:
        spec = fault_registry.REGISTRY[name]
        started = now()
        try:
            with self.lock:  # the fleet changes under one thread at a time
                effect = spec.run(self)
            detail = effect.detail
        except Exception as exc:
            effect, detail = fault_registry.Effect(), f"the fault itself failed: {type(exc).__name__}: {exc}"
            log.warning("fault %s failed: %s", name, exc)
        event = FaultEvent(name, started, now(), spec.interrupts, effect.pids, effect.job_ids, f"{detail} ({why})",
                           effect.reruns)
        self.events.append(event)
        print(f"  fault t+{(started - self.started_at).total_seconds():6.1f} s  {name}: {event.detail}", flush=True)

    # ------------------------------------------------------------------ the run
    def drain(self) -> bool:
        """Wait until every committed job is done or failed; False after DRAIN_SECONDS."""
        from django_meepo.models import Job

        if self.redis.proc is None:
            self.redis.start()
        deadline = time.monotonic() + DRAIN_SECONDS
        ids = sorted(self.committed)
        while time.monotonic() < deadline:
            ended = sum(Job.objects.filter(id__in=ids[i:i + 1000], status__in=("done", "failed")).count()
                        for i in range(0, len(ids), 1000))
            if ended == len(ids):
                return True
            self.note_exits()
            time.sleep(0.5)
        return False

    def run(self) -> tuple[list[Check], bool]:
        """The whole schedule; returns the checks and whether the drain finished."""
        self.started_at = now()
        self.fault_thread = threading.Thread(target=self.fault_loop, name="chaos-faults", daemon=True)
        self.fault_thread.start()
        try:
            self.push_loop()
        finally:
            self.stop.set()
            self.fault_thread.join()
        drained = self.drain()
        h = history.read(committed=self.committed, rolled_back=self.rolled_back,
                         operator_committed=self.operator_committed, faults=self.events)
        print(f"\n{len(self.committed)} jobs committed, {len(self.rolled_back)} pushes rolled back, "
              f"{len(h.runs)} runs recorded, {len(self.events)} faults fired; drained: {drained}")
        print("\n".join(history.fault_lines(self.events, self.started_at)))
        for line in self.exited:
            print(f"  note: {line}")
        checks = check(h)
        print("\n" + table(checks))
        return checks, drained

    def verdict(self, checks: list[Check], drained: bool) -> bool:
        return passed(checks) and drained
