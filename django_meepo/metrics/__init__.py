"""Prometheus metrics (the optional ``[metrics]`` extra, ``prometheus-client``): what the hooks count, and when.

:data:`ENABLED` is decided once, at import: True when ``prometheus_client`` imports. When it is False every hook
below is never called — the callers test the flag first (``if metrics.ENABLED: ...``), so a process without the
extra pays one attribute read per hook point and imports nothing at call time.

Counters and histograms (``prometheus_client``'s default registry, so multiprocess mode works as documented in
docs/metrics.md) are moved by the state machine's verbs, **after their commit** (``transaction.on_commit``: at
once in autocommit, at the caller's COMMIT inside a transaction, never after a rollback):

* ``meepo_jobs_pushed_total{task}`` — jobs INSERTed by ``push`` / ``push_many`` (not the existing job returned
  for an idempotency or unique key);
* ``meepo_jobs_started_total{task}`` — claims won (todo → doing), and ``meepo_job_pickup_latency_seconds{task}``,
  the claim's time minus the job's due time (both on the database's clock);
* ``meepo_jobs_finished_total{task,outcome}`` — a run's end as the state machine recorded it: ``done``,
  ``failed`` (its last failure), ``retried`` (a failure with a retry to come), ``snoozed``, ``released`` (handed
  back by its worker), ``rescued`` (its lease expired; the sweeper moved it to the task's zombie destination);
* ``meepo_job_duration_seconds{task}`` — how long the job function ran (the worker's monotonic clock).

Gauges are computed on scrape by the collectors in ``collectors.py`` (queue depth and oldest due age from one
indexed query; worker slots and the dispatcher's mode from this process's memory), never per job.

What if a hook raises? It cannot undo the commit it follows; ``transaction.on_commit`` callbacks run after the
commit, and every hook here catches its own errors and logs them, so a metrics bug never fails a job. What if a
commit's answer is lost? The verb settles it (``checked.apply``) and returns the rows it really changed; the hook
counts those, once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

try:  # the optional extra: decided once, at import
    import prometheus_client as _prom
except ImportError:  # pragma: no cover - exercised by a subprocess test that hides the module
    _prom = None  # type: ignore[assignment]

ENABLED: bool = _prom is not None
MISSING_MESSAGE = ("prometheus-client is not installed: install django-meepo's metrics extra "
                   "(pip install 'django-meepo[metrics]')")

# Outcomes of meepo_jobs_finished_total (docs/metrics.md lists them).
DONE, FAILED, RETRIED, SNOOZED, RELEASED, RESCUED = "done", "failed", "retried", "snoozed", "released", "rescued"
# CANCELLED: for a cancel verb that ends a job (it passes ``run_ended=CANCELLED`` to effects.after_transaction).
CANCELLED = "cancelled"
OUTCOMES = (DONE, FAILED, RETRIED, SNOOZED, RELEASED, RESCUED, CANCELLED)
# What a verb tells effects.after_transaction it recorded; FAILURE becomes FAILED or RETRIED by the new status.
FAILURE = "failure"

# Seconds: sub-millisecond jobs up to hour-long ones, and pickups from instant to an hour behind.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)

PUSHED: Any = None
STARTED: Any = None
FINISHED: Any = None
DURATION: Any = None
PICKUP_LATENCY: Any = None

if _prom is not None:
    PUSHED = _prom.Counter("meepo_jobs_pushed", "Jobs pushed (rows inserted), counted at the commit.", ["task"])
    STARTED = _prom.Counter("meepo_jobs_started", "Jobs claimed by a worker (todo to doing).", ["task"])
    FINISHED = _prom.Counter("meepo_jobs_finished", "Runs ended, by outcome: done, failed, retried, snoozed, "
                             "released, rescued (lease expired).", ["task", "outcome"])
    DURATION = _prom.Histogram("meepo_job_duration_seconds", "How long job functions ran.", ["task"],
                               buckets=DURATION_BUCKETS)
    PICKUP_LATENCY = _prom.Histogram("meepo_job_pickup_latency_seconds", "Claim time minus due time.", ["task"],
                                     buckets=LATENCY_BUCKETS)


def _on_commit(using: str, hook: Any) -> None:
    """Run ``hook`` once the caller's transaction commits (at once in autocommit), never raising into it."""
    from django.db import transaction

    def run() -> None:
        try:
            hook()
        except Exception:
            log.exception("meepo: a metrics hook raised (ignored)")

    transaction.on_commit(run, using=using)


def pushed(using: str, task: str, count: int) -> None:
    """``count`` jobs of ``task`` were INSERTed; counted when the caller's transaction commits."""
    if count:
        _on_commit(using, lambda: PUSHED.labels(task).inc(count))


def claimed(using: str, task: str, jobs: Sequence[Any], now: datetime) -> None:
    """Claims won (``ClaimedJob``s): started, and each one's pickup latency (``now`` minus its due time)."""
    if not jobs:
        return
    latencies = [max(0.0, (now - j.due_at).total_seconds()) for j in jobs if getattr(j, "due_at", None)]

    def count() -> None:
        STARTED.labels(task).inc(len(jobs))
        histogram = PICKUP_LATENCY.labels(task)
        for seconds in latencies:
            histogram.observe(seconds)

    _on_commit(using, count)


def outcome_of(kind: str, status: str) -> str:
    """The finished outcome a verb's ``kind`` gives a transition to ``status`` (a failure: failed or retried)."""
    if kind == FAILURE:
        return FAILED if status == "failed" else RETRIED
    return kind


def finished(using: str, kind: str, transitions: Sequence[Any]) -> None:
    """Runs ended by committed ``transitions`` (``states.Transition``), counted by task and outcome at the commit."""
    if not transitions:
        return
    counts: dict[tuple[str, str], int] = {}
    for t in transitions:
        key = (t.task, outcome_of(kind, t.status))
        counts[key] = counts.get(key, 0) + 1

    def count() -> None:
        for (task, outcome), n in counts.items():
            FINISHED.labels(task, outcome).inc(n)

    _on_commit(using, count)


def ran(task: str, seconds: float) -> None:
    """A job function of ``task`` ran for ``seconds`` (whatever its outcome)."""
    try:
        DURATION.labels(task).observe(seconds)
    except Exception:
        log.exception("meepo: a metrics hook raised (ignored)")


def require() -> Any:
    """The ``prometheus_client`` module, or ImproperlyConfigured naming the extra to install."""
    if _prom is None:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(MISSING_MESSAGE)
    return _prom


# The running workers of this process, for the slots gauge (see collectors.py); weak, so a dropped worker goes.
_workers: Any = None


def worker_running(worker: Any) -> Any:
    """A context manager around a worker's run: while inside, its slots count in ``meepo_worker_slots``."""
    import contextlib
    import weakref

    global _workers
    if _workers is None:
        _workers = weakref.WeakSet()

    @contextlib.contextmanager
    def running() -> Any:
        _workers.add(worker)
        try:
            yield
        finally:
            _workers.discard(worker)

    return running()


def running_workers() -> list[Any]:
    return list(_workers) if _workers is not None else []
