"""The gauges, computed when Prometheus scrapes (custom collectors), never per job.

* :class:`QueueCollector` — per task, from **one** query: ``meepo_queue_depth{task}`` (todo jobs due now),
  ``meepo_queue_scheduled{task}`` (todo jobs due later: delays, retry backoff, snoozes),
  ``meepo_jobs_running{task}`` (doing) and ``meepo_queue_oldest_due_age_seconds{task}`` (how long the oldest due
  todo job has waited; 0 when none). The query reads the index ``meepo_job_task_status_due`` (task, status,
  due_at) — a range per known task and status, covering, so ``done`` rows (however many) are never read — and
  ``meepo_queue_collect_up`` says whether it answered. These numbers are the database's, the same from every
  process: scrape them from one place (or aggregate with ``max``), not summed.
* :class:`ProcessCollector` — this process's ``meepo_worker_slots{state="busy"|"total"}`` (the running workers'
  slots) and ``meepo_dispatcher_mode{mode="redis"|"database"}`` (1 for the mode its dispatcher fetches through
  now: ``database`` while the failover dispatcher takes Redis to be down, or with ``MEEPO["DISPATCH"] =
  "database"``).

What if the database does not answer during a scrape? ``collect`` logs it, yields ``meepo_queue_collect_up 0``
and no queue gauges; the scrape itself succeeds. What if it runs twice at once? Each call is one read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.db import DatabaseError, connections
from django.db.models import Count, Min, Q

from . import require, running_workers

log = logging.getLogger(__name__)

MODES = ("redis", "database")


def queue_rows(using: str, tasks: list[str]) -> list[dict[str, Any]]:
    """One query per job table: per (task, status) of the todo and doing jobs of ``tasks``: count, count due
    now, oldest due."""
    from ..clock import db_now
    from ..states import Status
    from ..tables import for_task

    now = db_now(using)
    by_table: dict[Any, list[str]] = {}
    for name in tasks:  # one query per job table (tables.py)
        by_table.setdefault(for_task(name).model, []).append(name)
    found: list[dict[str, Any]] = []
    for model, names in by_table.items():
        found += (model.objects.using(using).filter(task__in=names, status__in=[Status.TODO, Status.DOING])
                  .values("task", "status")
                  .annotate(n=Count("id"), due=Count("id", filter=Q(due_at__lte=now)), oldest=Min("due_at"))
                  .order_by())
    return [{**row, "now": now} for row in found]


class QueueCollector:
    """Queue depth, scheduled and running jobs and the oldest due age per task, from one query per scrape.

    ``close_connection``: close this thread's database connection after each scrape (the worker's metrics
    server answers each request on a new thread, whose connection nothing else would close)."""

    def __init__(self, *, using: str | None = None, close_connection: bool = False) -> None:
        self.using = using
        self.close_connection = close_connection

    def describe(self) -> list[Any]:
        return []  # collected on scrape only (registering it must not query the database)

    def collect(self) -> Iterator[Any]:
        require()
        from ..conf import get_settings
        from ..registry import task_names
        from ..states import Status

        using = self.using or get_settings().database
        from prometheus_client.core import GaugeMetricFamily as gauge
        up = gauge("meepo_queue_collect_up", "1 when the queue gauges were read from the database, else 0.")
        tasks = task_names()
        try:
            rows = queue_rows(using, tasks) if tasks else []
        except DatabaseError as exc:
            log.warning("meepo: metrics: could not read the queue gauges (%s)", exc)
            up.add_metric([], 0)
            yield up
            return
        finally:
            if self.close_connection:
                connections[using].close()
        up.add_metric([], 1)
        yield up
        depth = gauge("meepo_queue_depth", "Todo jobs due now, waiting for a worker.", labels=["task"])
        later = gauge("meepo_queue_scheduled", "Todo jobs due later (delay, backoff, snooze).", labels=["task"])
        running = gauge("meepo_jobs_running", "Jobs claimed and running (doing).", labels=["task"])
        age = gauge("meepo_queue_oldest_due_age_seconds", "How long the oldest due todo job has waited.",
                    labels=["task"])
        seen: dict[str, dict[str, Any]] = {t: {} for t in tasks}
        for row in rows:
            seen.setdefault(row["task"], {})[row["status"]] = row
        for task, by_status in seen.items():
            todo, doing = by_status.get(Status.TODO), by_status.get(Status.DOING)
            depth.add_metric([task], todo["due"] if todo else 0)
            later.add_metric([task], todo["n"] - todo["due"] if todo else 0)
            running.add_metric([task], doing["n"] if doing else 0)
            waited = (todo["now"] - todo["oldest"]).total_seconds() if todo and todo["oldest"] else 0.0
            age.add_metric([task], max(0.0, waited))
        yield from (depth, later, running, age)


def dispatcher_mode(dispatcher: Any) -> str | None:
    """``redis`` or ``database``: what ``dispatcher`` fetches through now (None for an unknown kind)."""
    from ..dispatch.database import DatabaseDispatcher
    from ..dispatch.failover import FailoverDispatcher
    from ..dispatch.redis import RedisDispatcher

    if isinstance(dispatcher, FailoverDispatcher):
        return "database" if dispatcher.using_fallback else "redis"
    if isinstance(dispatcher, DatabaseDispatcher):
        return "database"
    if isinstance(dispatcher, RedisDispatcher):
        return "redis"
    return None


class ProcessCollector:
    """This process's worker slots (busy, total) and dispatcher mode, read from memory on scrape."""

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        require()
        from prometheus_client.core import GaugeMetricFamily

        from .. import dispatch
        from ..holdings import RUNNING

        workers = running_workers()
        slots = GaugeMetricFamily("meepo_worker_slots", "Job slots of this process's workers.",
                                            labels=["state"])
        slots.add_metric(["busy"], sum(w.holdings.count(RUNNING) for w in workers))
        slots.add_metric(["total"], sum(w.capacity for w in workers))
        yield slots
        dispatcher = workers[0].dispatcher if workers else dispatch._producer
        mode = dispatcher_mode(dispatcher) if dispatcher is not None else None
        if mode is not None:
            family = GaugeMetricFamily(
                "meepo_dispatcher_mode", "1 for the mode this process's dispatcher fetches through now.",
                labels=["mode"])
            for name in MODES:
                family.add_metric([name], 1 if name == mode else 0)
            yield family


class _Forward:
    """Yields what another registry (the process's default one) collects, so a scrape registry of our own can
    add the database collectors without registering them in the default registry."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()


_registries: dict[bool, Any] = {}


def scrape_registry(*, close_connection: bool = False) -> Any:
    """The registry a scrape reads: this process's counters and histograms (or, with ``PROMETHEUS_MULTIPROC_DIR``
    set, every process's, through ``MultiProcessCollector``) plus the queue and process gauges. Built once per
    process; the default registry is never changed (so importing or serving twice cannot register twice)."""
    registry = _registries.get(close_connection)
    if registry is None:
        prom = require()
        import os

        registry = prom.CollectorRegistry(auto_describe=False)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(registry)
        else:
            registry.register(_Forward(prom.REGISTRY))
        registry.register(QueueCollector(close_connection=close_connection))
        registry.register(ProcessCollector())
        registry = _registries.setdefault(close_connection, registry)
    return registry
