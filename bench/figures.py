"""The figures the benchmark reports: their titles, units, direction, and issue 6's targets for django-meepo."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .config import FULL, Sizes


@dataclass(frozen=True, slots=True)
class Target:
    text: str
    met: Callable[[float], bool]
    full_size_only: str = ""  # the Sizes field the target was set for (a scaled run is not judged)


@dataclass(frozen=True, slots=True)
class Figure:
    key: str
    title: str  # may name a size: "{flush_jobs:,}"
    unit: str
    fmt: str
    higher_is_better: bool
    target: Target | None = None
    compared: bool = True  # False: no ratio against django-meepo (it describes the run, not the system)

    def heading(self, sizes: Sizes) -> str:
        title = self.title.format(**{k: getattr(sizes, k) for k in Sizes.__dataclass_fields__})
        return f"{title} ({self.unit})" if self.unit else title

    def show(self, value: float) -> str:
        return format(value, self.fmt)

    def judged(self, sizes: Sizes) -> bool:
        """False when this run's sizes are not those the target was set for."""
        field = self.target.full_size_only if self.target else ""
        return not field or getattr(sizes, field) == getattr(FULL, field)


COMPARED = (
    Figure("processed", "processed", "jobs/s", ",.0f", True),
    Figure("push_one", "pushed one at a time", "jobs/s", ",.0f", True),
    Figure("push_bulk", "pushed in bulk", "jobs/s", ",.0f", True, Target("≥ 30,000/s", lambda v: v >= 30_000)),
    Figure("lost", "jobs lost when Redis is flushed at ~30 % of {flush_jobs:,}", "jobs", ",.0f", False,
           Target("0", lambda v: v == 0)),
    Figure("flushed_at", "share of those that had run when Redis was flushed", "%", ".0f", False, compared=False),
)

# The hooks workload (bench/hook_workloads.py): processed with each optional extra, and its cost against none.
HOOKS = (
    Figure("hooks_none", "processed, neither optional extra (hooks workload)", "jobs/s", ",.0f", True),
    Figure("hooks_metrics", "processed, [metrics] on: prometheus-client", "jobs/s", ",.0f", True),
    Figure("hooks_tracing_api", "processed, [tracing] on, no SDK: the API's non-recording spans", "jobs/s", ",.0f",
           True),
    Figure("hooks_tracing", "processed, [tracing] on: an OpenTelemetry SDK recording every span", "jobs/s", ",.0f",
           True),
    Figure("hooks_metrics_cost", "cost of [metrics]: processed/s lost against none, same run", "%", "+.1f", False),
    Figure("hooks_tracing_api_cost", "cost of [tracing] without an SDK: processed/s lost against none, same run",
           "%", "+.1f", False),
    Figure("hooks_tracing_cost", "cost of [tracing] with an SDK: processed/s lost against none, same run", "%",
           "+.1f", False),
)

MEEPO_ONLY = (
    Figure("push_tx1", "pushed one per transaction", "jobs/s", ",.0f", True, Target("≥ 2,000/s", lambda v: v >= 2_000)),
    Figure("tx1_floor", "ceiling: one bare INSERT per transaction, no django-meepo", "rows/s", ",.0f", True,
           compared=False),
    Figure("push_tx100", "pushed 100 per transaction", "jobs/s", ",.0f", True,
           Target("≥ 4,000/s", lambda v: v >= 4_000)),
    Figure("latency_p50", "pickup latency on an idle worker, p50", "ms", ".1f", False,
           Target("≤ 5 ms", lambda v: v <= 5)),
    Figure("latency_p99", "pickup latency on an idle worker, p99", "ms", ".1f", False,
           Target("≤ 20 ms", lambda v: v <= 20)),
    Figure("statements", "database statements per processed job, counted by the workers", "", ".3f", False,
           Target("≤ 0.2", lambda v: v <= 0.2)),
    Figure("questions", "server Questions per processed job (every client of the server: an upper bound)", "",
           ".3f", False),
    Figure("connections", "database connections the workers opened", "", ".0f", False),
    Figure("rss_small", "worker RSS after {rss_small:,} jobs", "MB", ".1f", False),
    Figure("rss_large", "worker RSS after {rss_large:,} jobs", "MB", ".1f", False),
    Figure("rss_growth", "worker RSS growth from {rss_small:,} to {rss_large:,} jobs", "%", "+.1f", False,
           Target("≤ 10 %", lambda v: v <= 10, full_size_only="rss_large")),
    Figure("processed_nolimit", "processed, a task without limits (flow workload)", "jobs/s", ",.0f", True),
    Figure("processed_concurrency", "processed, a task with a global concurrency limit (not binding)", "jobs/s",
           ",.0f", True),
    Figure("processed_rate", "processed, a task with a rate limit (not binding)", "jobs/s", ",.0f", True),
    Figure("sweep", "sweeper re-dispatch of {sweep_jobs:,} jobs Redis lost", "s", ".2f", False,
           Target("≤ 10 s for 100,000", lambda v: v <= 10, full_size_only="sweep_jobs")),
    # bench/scale_workloads.py (issue 14); the hosts figures' variants are the host counts
    Figure("hosts_processed", "hosts: {hosts_jobs:,} jobs processed, one worker (×4) per host", "jobs/s", ",.0f", True),
    Figure("hosts_cpu_database", "hosts: CPU of MariaDB meanwhile", "% of a core", ".0f", False),
    Figure("hosts_cpu_redis", "hosts: CPU of Redis meanwhile", "% of a core", ".0f", False),
    Figure("hosts_cpu_workers", "hosts: CPU of the workers meanwhile", "% of a core", ".0f", False),
    Figure("pg_listen_p50", "PostgreSQL, DISPATCH=database, LISTEN/NOTIFY: pickup latency p50", "ms", ".1f", False,
           Target("≤ 5 ms", lambda v: v <= 5)),
    Figure("pg_listen_p95", "PostgreSQL, DISPATCH=database, LISTEN/NOTIFY: pickup latency p95", "ms", ".1f", False),
    Figure("pg_poll_p50", "PostgreSQL, DISPATCH=database, polling: pickup latency p50", "ms", ".1f", False),
    Figure("pg_poll_p95", "PostgreSQL, DISPATCH=database, polling: pickup latency p95", "ms", ".1f", False),
    *HOOKS,
)

BY_KEY = {f.key: f for f in (*COMPARED, *MEEPO_ONLY)}

# processed: at least 2× the fastest peer in the same run, and at least 5,000/s.
PROCESSED_FLOOR = 5_000
PROCESSED_FACTOR = 2
