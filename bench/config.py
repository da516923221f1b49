"""What a benchmark run does: sizes of every workload, the full and ``--quick`` presets, where the services are.

A :class:`Config` crosses process boundaries as JSON (the runner hands it to each child), hence
:meth:`Config.to_json` and :meth:`Config.from_json`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Redis database numbers on the shared server, one per system, so that no system sees another's keys; every
# key a run writes is deleted after it (by the run's own prefix), and nothing is ever flushed there.
REDIS_DBS = {"meepo": 10, "celery": 11, "rq": 12, "dramatiq": 13, "huey": 14, "results": 15}

@dataclass(frozen=True, slots=True, kw_only=True)
class Sizes:
    jobs: int = 20_000  # pushed one at a time, then processed; also pushed in bulk
    bulk_size: int = 1_000  # jobs per bulk call (push_many, enqueue_many, a Celery group)
    flush_jobs: int = 3_000  # Redis is flushed once ~30 % of them ran (fewer: fast systems finish first)
    tx_jobs: int = 20_000  # django-meepo: pushes in transactions (one per transaction, 100 per transaction)
    latency_samples: int = 200  # django-meepo: jobs pushed one by one to an idle worker
    latency_gap: float = 0.05  # seconds between two of them
    rss_small: int = 10_000  # django-meepo: worker RSS after this many jobs ...
    rss_large: int = 200_000  # ... and after this many
    sweep_jobs: int = 100_000  # django-meepo: todo jobs whose Redis entries are deleted, then swept back
    hosts_jobs: int = 20_000  # django-meepo: drained by workers on 1, 2 and 4 hosts (network namespaces)
    time_box: float = 120.0  # a processing measurement stops after this long (slow systems), time-boxed
    stall: float = 15.0  # no job ran for this long: whatever has not run by then is lost (or stuck)


FULL = Sizes()
QUICK = Sizes(jobs=2_000, tx_jobs=2_000, latency_samples=50, rss_small=1_000, rss_large=20_000,
              sweep_jobs=10_000, hosts_jobs=2_000, time_box=20.0, stall=8.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    database_url: str = "mysql://root@127.0.0.1:3306"  # MariaDB server; each system gets a database of its own
    redis_url: str = "redis://127.0.0.1:6379"  # shared Redis server; each system gets a database number (REDIS_DBS)
    meepo_db: str = "bench_meepo"
    dtdb_db: str = "bench_dtdb"
    postgres_url: str = "postgres://postgres@127.0.0.1:5432"  # the pg-latency workload's server

    def redis(self, system: str) -> str:
        return f"{self.redis_url.rstrip('/')}/{REDIS_DBS[system]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    runs: int = 5
    sizes: Sizes = field(default_factory=Sizes)
    services: Services = field(default_factory=Services)
    systems: tuple[str, ...] = ()  # empty: all
    workloads: tuple[str, ...] = ()  # empty: all
    variants: tuple[str, ...] = ()  # processing variants to run (empty: all)
    quick: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Config:
        raw = json.loads(text)
        return cls(runs=raw["runs"], sizes=Sizes(**raw["sizes"]), services=Services(**raw["services"]),
                   systems=tuple(raw["systems"]), workloads=tuple(raw["workloads"]),
                   variants=tuple(raw["variants"]), quick=raw["quick"])

