"""Per-minute samples for the admin dashboard's charts, written by the leading sweeper of each task.

Once a minute, for every task it leads, a sweeper writes one :class:`~django_meepo.models.StatSample` for the
minute that just ended (``SAMPLE_LAG`` seconds after it ended, so that late commits are counted):

* ``done`` / ``failed``: jobs that finished in that minute (one ``GROUP BY`` on the ``(finished_at, task, status)``
  index);
* ``depth`` and ``oldest_due_seconds``: due ``todo`` jobs and the age of the oldest, when the sample is taken (the
  ``(task, status, due_at)`` index);
* ``latency_p50`` / ``latency_p95``: pickup latency (``started_at - due_at``: how long a due job waited for a
  worker) of the jobs that finished in that minute, from at most :data:`LATENCY_ROWS` of them, read through the
  same ``finished_at`` index. There is no index on ``started_at`` and adding one would cost every claim; for jobs
  shorter than a minute the two sets are the same.

Idempotent: the UNIQUE (task, minute) key makes a second leader's write (after a failover), or a retry of a write
whose answer was lost, a no-op; a sample already there is not computed again. A sweeper that restarts within the
minute finds its sample there. A failing statement is logged by the sweeper's loop and the minute is tried again
at the next tick (until the next minute replaces it: a minute missed while no sweeper ran is a gap in the charts).

Pruning: with ``MEEPO["RETENTION_DAYS"]`` set, samples older than that are deleted (at most once a minute per
sweeper, one DELETE on the ``minute`` index; two sweepers deleting the same rows is harmless). Without it samples
are kept, like jobs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Min

from .conf import get_settings
from .models import StatSample
from .states import Status
from .tables import for_task

log = logging.getLogger(__name__)

# A minute is sampled this many seconds after it ended: jobs committed a moment late are counted in it.
SAMPLE_LAG = timedelta(seconds=5)
# The pickup latency of a minute is measured on at most this many of the jobs that finished in it.
LATENCY_ROWS = 2000
PRUNE_PERIOD = timedelta(minutes=1)


def minute_of(moment: datetime) -> datetime:
    """The start of the minute ``moment`` is in."""
    return moment.replace(second=0, microsecond=0)


def due_minute(now: datetime) -> datetime:
    """The last minute that ended at least :data:`SAMPLE_LAG` before ``now``: the one to sample at ``now``."""
    return minute_of(now - SAMPLE_LAG) - timedelta(minutes=1)


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def measure(task: str, minute: datetime, now: datetime, *, using: str) -> StatSample:
    """The (unsaved) sample of ``task`` for ``minute``, from four indexed queries; nothing is written."""
    end = minute + timedelta(minutes=1)
    model = for_task(task).model
    finished = model.objects.using(using).filter(finished_at__gte=minute, finished_at__lt=end, task=task,
                                               status__in=[Status.DONE, Status.FAILED])
    counts = dict(finished.order_by().values_list("status").annotate(n=Count("id")))
    # A job claimed before its due time (a clock step) waited no time.
    waits = [max(0.0, (started - due).total_seconds()) for started, due in
             finished.filter(started_at__isnull=False).order_by("finished_at")
             .values_list("started_at", "due_at")[:LATENCY_ROWS] if started is not None]
    due = model.objects.using(using).due(task, now)
    oldest = due.aggregate(m=Min("due_at"))["m"]
    return StatSample(task=task, minute=minute, done=counts.get(Status.DONE, 0),
                      failed=counts.get(Status.FAILED, 0), depth=due.count(),
                      oldest_due_seconds=None if oldest is None else max(0.0, (now - oldest).total_seconds()),
                      latency_p50=percentile(waits, 0.5), latency_p95=percentile(waits, 0.95), created_at=now)


def record(task: str, minute: datetime, now: datetime, *, using: str) -> bool:
    """Write the sample of ``task`` for ``minute`` unless it is there; True if this call wrote it.

    Run twice (two leaders, a retry after a lost answer) it writes once: the UNIQUE key refuses the second
    INSERT, in its own savepoint, and nothing else was written.
    """
    if StatSample.objects.using(using).filter(task=task, minute=minute).exists():
        return False
    sample = measure(task, minute, now, using=using)
    try:
        with transaction.atomic(using=using):
            sample.save(using=using, force_insert=True)
    except IntegrityError:
        return False
    return True


def prune(now: datetime, *, using: str) -> int:
    """Delete the samples older than ``MEEPO["RETENTION_DAYS"]`` (none without it); returns how many."""
    days = get_settings().retention_days
    if days is None:
        return 0
    deleted, _ = StatSample.objects.using(using).filter(minute__lt=now - timedelta(days=days)).delete()
    return deleted


class Sampler:
    """The sweeper's sampling step: a sample per led task per minute, and the pruning."""

    def __init__(self, *, using: str) -> None:
        self.using = using
        self._sampled: dict[str, datetime] = {}  # per task: the last minute this sampler wrote or found written
        self._next_prune: datetime | None = None

    def step(self, tasks: Sequence[str], now: datetime) -> int:
        """Sample the due minute of each task in ``tasks`` (the ones this sweeper leads); returns samples written."""
        minute = due_minute(now)
        written = 0
        for task in tasks:
            if self._sampled.get(task) == minute:
                continue
            written += record(task, minute, now, using=self.using)
            self._sampled[task] = minute
        if tasks and (self._next_prune is None or now >= self._next_prune):
            self._next_prune = now + PRUNE_PERIOD
            pruned = prune(now, using=self.using)
            if pruned:
                log.info("meepo: retention: deleted %d chart sample(s)", pruned)
        return written
