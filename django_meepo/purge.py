"""Purging finished jobs: DELETE ``done``, ``failed`` and ``cancelled`` jobs (and their attempts) finished before a
cut-off.

Every job table is purged (tables.py: the shared ``meepo_job`` and each task's own). Used by
``manage.py meepo_purge`` and, when ``MEEPO["RETENTION_DAYS"]`` is set, by the sweeper (:class:`Retention`,
one purger at a time by a leadership lease). Nothing else is ever deleted: a job that is repushed while a batch is
being purged keeps its row (each batch locks its rows by primary key and re-checks them before deleting).

At thousands of jobs a second the job table grows by millions of rows an hour, so purging works in batches of
primary keys found through the ``finished_at`` index, each batch its own short transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import leader
from .conf import get_settings
from .models import AbstractJob, Job
from .states import FINISHED_STATUSES
from .tables import all_tables, for_model, for_task

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
# The sweeper purges at most this long per tick, so that due jobs and expired leases are never kept waiting.
TICK_BUDGET = 0.5
# When a retention purge found nothing more to delete, it looks again after this many seconds.
RETENTION_PERIOD = 60.0
LEASE_NAME = "purger"
LEASE_TTL = 30.0

ProgressCallback = Callable[[int], None]


def cutoff_for(days: float, now: datetime | None = None) -> datetime:
    """The moment ``days`` days before ``now``: jobs finished before it are purged."""
    return (now or timezone.now()) - timedelta(days=days)


def finished_before(cutoff: datetime, *, using: str | None = None, tasks: Sequence[str] | None = None,
                    statuses: Sequence[str] = FINISHED_STATUSES,
                    model: type[AbstractJob] | None = None) -> QuerySet[AbstractJob]:
    """The jobs of one table (``model``'s; the shared one by default) a purge at ``cutoff`` deletes (finished
    ones only, whatever ``statuses`` asks for)."""
    wanted = [s for s in statuses if s in FINISHED_STATUSES]
    qs = (model or Job).objects.using(using or get_settings().database).filter(status__in=wanted,
                                                                               finished_at__lt=cutoff)
    if tasks:
        qs = qs.filter(task__in=list(tasks))
    return qs


def selections(cutoff: datetime, *, using: str | None = None, tasks: Sequence[str] | None = None,
               statuses: Sequence[str] = FINISHED_STATUSES) -> list[QuerySet[AbstractJob]]:
    """:func:`finished_before` for every job table (tables.py) — of ``tasks``' tables only, when given."""
    found = all_tables()
    if tasks:
        found = [t for t in found if t in {for_task(n) for n in tasks}]
    return [finished_before(cutoff, using=using, tasks=tasks, statuses=statuses, model=t.model) for t in found]


def purge_all(querysets: Sequence[QuerySet[AbstractJob]], *, batch_size: int = BATCH_SIZE,
              budget: float | None = None, on_progress: ProgressCallback | None = None) -> PurgeResult:
    """:func:`purge` of each queryset (one per table) in turn, within one ``budget``; totals added up."""
    total = PurgeResult()
    started = time.monotonic()
    for queryset in querysets:
        left = None if budget is None else max(0.0, budget - (time.monotonic() - started))
        part = purge(queryset, batch_size=batch_size, budget=left,
                     on_progress=_offset(on_progress, total.deleted) if on_progress else None)
        total.deleted += part.deleted
        total.attempts_deleted += part.attempts_deleted
        if not part.complete:
            total.complete = False
            return total
    return total


@dataclass(slots=True)
class PurgeResult:
    deleted: int = 0
    attempts_deleted: int = 0
    complete: bool = True  # False when a time budget ran out with rows still to delete


def _offset(callback: ProgressCallback, base: int) -> ProgressCallback:
    return lambda n: callback(base + n)


def purge(queryset: QuerySet[AbstractJob], *, batch_size: int = BATCH_SIZE, budget: float | None = None,
          on_progress: ProgressCallback | None = None) -> PurgeResult:
    """Delete the finished jobs of ``queryset`` (a :func:`finished_before` queryset) batch by batch.

    ``budget`` bounds the seconds spent (the last batch may overrun it); ``on_progress`` gets the running total.
    """
    result = PurgeResult()
    started = time.monotonic()
    while True:
        ids = list(queryset.order_by("finished_at").values_list("id", flat=True)[:batch_size])
        if not ids:
            return result
        jobs, attempts = delete_jobs(queryset.filter(id__in=ids))
        result.deleted += jobs
        result.attempts_deleted += attempts
        if on_progress is not None:
            on_progress(result.deleted)
        if len(ids) < batch_size:
            return result
        if budget is not None and time.monotonic() - started >= budget:
            result.complete = False
            return result


def delete_jobs(queryset: QuerySet[AbstractJob]) -> tuple[int, int]:
    """DELETE the jobs of ``queryset`` and their attempts; returns (jobs, attempts) deleted.

    The rows are locked first (``SELECT … FOR UPDATE`` by the queryset's own conditions), so a job that changes
    meanwhile — repushed, say — no longer matches and is kept. Keep the queryset small (a batch of primary keys).
    """
    using = queryset.db
    table = for_model(queryset.model)
    with transaction.atomic(using=using):
        locked = list(queryset.select_for_update().order_by().values_list("id", flat=True))
        if not locked:
            return 0, 0
        marks = ", ".join(["%s"] * len(locked))
        conn = connections[using]
        with conn.cursor() as cursor:
            cursor.execute(f"DELETE FROM {conn.ops.quote_name(table.attempt._meta.db_table)} "
                           f"WHERE job_id IN ({marks})", locked)
            attempts = cursor.rowcount
            cursor.execute(f"DELETE FROM {conn.ops.quote_name(table.name)} WHERE id IN ({marks})", locked)
            jobs = cursor.rowcount
    return jobs, attempts


class Retention:
    """The sweeper's purge step: with ``MEEPO["RETENTION_DAYS"]`` set, deletes what is older, a little per tick."""

    def __init__(self, *, using: str, holder: str) -> None:
        self.using = using
        self.holder = holder
        self._next_run = float("-inf")

    def step(self, now: datetime, monotonic: float) -> int:
        """Purge for at most :data:`TICK_BUDGET` seconds if it is time to; returns how many jobs were deleted."""
        days = get_settings().retention_days
        if days is None or monotonic < self._next_run:
            return 0
        try:
            if not leader.hold(LEASE_NAME, self.holder, ttl=LEASE_TTL, now=now, using=self.using):
                self._next_run = monotonic + RETENTION_PERIOD
                return 0
            result = purge_all(selections(cutoff_for(days, now), using=self.using), budget=TICK_BUDGET)
        except DatabaseError as exc:
            log.warning("meepo: retention purge failed (%s); trying again later", exc)
            self._next_run = monotonic + RETENTION_PERIOD
            return 0
        # More left: go on at the next tick; otherwise look again in a while.
        self._next_run = monotonic if not result.complete else monotonic + RETENTION_PERIOD
        if result.deleted:
            log.info("meepo: retention: deleted %d finished job(s) older than %g day(s)", result.deleted, days)
        return result.deleted
