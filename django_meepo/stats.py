"""The numbers an operator watches, in one place: the admin dashboard and ``manage.py meepo_stats`` both use them.

:func:`collect` takes a :class:`Snapshot`:

* jobs per task and status (one ``GROUP BY`` over the ``(task, status, …)`` index of each job table);
* per task, the age of the oldest due ``todo`` job (how far behind the workers are) and the length of its Redis
  queue (``Dispatcher.length``; ``None`` when Redis cannot be reached — the rest still works);
* jobs finished (done / failed) in the last minute and the last hour (the ``finished_at`` index);
* workers: the ``Worker`` rows that running consumers keep fresh; one whose ``last_seen`` is within its lease is
  *alive*, an older row is *stale* (a worker killed before it could delete its row) — and the ``doing`` jobs each
  holds. Jobs in ``doing`` held by no live worker are *orphans*: the sweeper rescues them when their lease expires;
* schedules (``MEEPO["SCHEDULE"]``): each valid one with its last recorded tick (and the job it got) and its next
  tick — one indexed lookup per schedule on ``ScheduleTick``'s unique (name, tick).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min

from .clock import db_now
from .conf import get_settings
from .exceptions import MeepoError
from .models import ScheduleTick, Worker
from .options import DEFAULTS
from .registry import Task, all_tasks
from .schedule import aware, schedules
from .states import ALL_STATUSES, Status
from .tables import all_tables, for_task

log = logging.getLogger(__name__)

# How many held jobs a snapshot lists per worker (the count is always exact).
HELD_JOBS_SHOWN = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStats:
    name: str
    declared: bool
    counts: dict[str, int]
    oldest_due_seconds: float | None
    queued_in_redis: int | None
    done_last_minute: int
    failed_last_minute: int
    done_last_hour: int
    failed_last_hour: int

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldJob:
    id: int
    task: str
    cid: int
    started_at: datetime | None
    lease_until: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerStats:
    id: str
    hostname: str
    pid: int
    tasks: tuple[str, ...]
    parallel: int
    started_at: datetime
    last_seen: datetime
    processed: int
    failed: int
    alive: bool
    holding: int
    jobs: tuple[HeldJob, ...]
    reported: bool = True  # False until its first report after registering: its counters are not known yet

    @property
    def counts(self) -> str:
        """``processed=N failed=M``, or ``processed=? failed=? (no report yet)`` for a worker that registered
        moments ago: its counters reach the row with its first heartbeat, and a 0 then would be a guess."""
        if not self.reported:
            return "processed=? failed=? (no report yet)"
        return f"processed={self.processed} failed={self.failed}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleStats:
    """A schedule, its last recorded tick (None: none yet) with that tick's job, and its next tick (UTC)."""

    name: str
    task: str
    cron: str
    timezone: str
    missed: str
    last_tick: datetime | None
    last_job_id: int | None
    next_tick: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    taken_at: datetime
    tasks: tuple[TaskStats, ...]
    workers: tuple[WorkerStats, ...]
    orphans: tuple[HeldJob, ...]
    redis_error: str | None = None
    totals: dict[str, int] = field(default_factory=dict)
    schedules: tuple[ScheduleStats, ...] = ()

    @property
    def live_workers(self) -> tuple[WorkerStats, ...]:
        return tuple(w for w in self.workers if w.alive)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _key_prefix(task: Task | None) -> str:
    default = get_settings().key_prefix
    return (task.options.key_prefix or default) if task is not None else default


def _redis_lengths(names: list[str], declared: dict[str, Task]) -> tuple[dict[str, int], str | None]:
    """Queue length per task; stops at the first failure (Redis down): each attempt may wait a timeout."""
    try:
        from .dispatch import producer_dispatcher

        dispatcher = producer_dispatcher()
        return {n: dispatcher.length(n, _key_prefix(declared.get(n))) for n in names}, None
    except (MeepoError, OSError) as exc:
        log.warning("meepo: stats: Redis queue lengths unavailable: %s", exc)
        return {}, str(exc)


def _finished_since(using: str, since: datetime) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = defaultdict(int)
    for table in all_tables():
        for t, s, n in (table.model.objects.using(using).filter(finished_at__gte=since).order_by()
                        .values_list("task", "status").annotate(n=Count("id"))):
            found[(t, s)] += n
    return found


def _oldest_due(using: str, names: list[str], now: datetime) -> dict[str, datetime | None]:
    """Per task, one index lookup on (task, status, due_at)."""
    return {n: for_task(n).model.objects.using(using).due(n, now).aggregate(m=Min("due_at"))["m"] for n in names}


def worker_alive(row: Worker, now: datetime, declared: dict[str, Task] | None = None) -> bool:
    """Seen within the longest lease of its tasks: a running worker reports itself every heartbeat."""
    declared = declared if declared is not None else {t.name: t for t in all_tasks()}
    leases = [declared[n].options.lease_timeout for n in row.tasks.split(",") if n in declared]
    lease = max(leases) if leases else float(DEFAULTS["lease_timeout"])
    return row.last_seen >= now - timedelta(seconds=lease)


def _workers(using: str, now: datetime, declared: dict[str, Task]) -> tuple[tuple[WorkerStats, ...],
                                                                           tuple[HeldJob, ...]]:
    held: dict[str, list[HeldJob]] = defaultdict(list)
    for table in all_tables():
        for worker, job_id, task, cid, started, lease in (
                table.model.objects.using(using).filter(status=Status.DOING).order_by("id")
                .values_list("worker", "id", "task", "cid", "started_at", "lease_until")):
            held[worker].append(HeldJob(id=job_id, task=task, cid=cid, started_at=started, lease_until=lease))
    workers = []
    for row in Worker.objects.using(using).order_by("id"):
        tasks = tuple(t for t in row.tasks.split(",") if t)
        alive = worker_alive(row, now, declared)
        jobs = held.pop(row.id, []) if alive else held.get(row.id, [])
        workers.append(WorkerStats(id=row.id, hostname=row.hostname, pid=row.pid, tasks=tasks, parallel=row.parallel,
                                   started_at=row.started_at, last_seen=row.last_seen, processed=row.processed,
                                   failed=row.failed, alive=alive, holding=len(jobs),
                                   reported=row.last_seen > row.started_at,
                                   jobs=tuple(jobs[:HELD_JOBS_SHOWN])))
    orphans = tuple(job for jobs in held.values() for job in jobs)
    return tuple(workers), orphans


def _schedules(using: str, now: datetime) -> tuple[ScheduleStats, ...]:
    found = []
    for s in schedules():
        last = (ScheduleTick.objects.using(using).filter(name=s.name).order_by("-tick")
                .values_list("tick", "job_id").first())
        found.append(ScheduleStats(name=s.name, task=s.task, cron=s.cron, timezone=str(s.zone), missed=s.missed,
                                   last_tick=aware(last[0]) if last else None, last_job_id=last[1] if last else None,
                                   next_tick=s.next_after(aware(now))))
    return tuple(found)


def collect(*, using: str | None = None, now: datetime | None = None, redis: bool = True) -> Snapshot:
    """Take a snapshot of the queue. ``redis=False`` skips the Redis queue lengths."""
    alias = using or get_settings().database
    now = now or db_now(alias)
    declared = {t.name: t for t in all_tasks()}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(ALL_STATUSES, 0))
    for name in declared:
        counts[name]  # a declared task is listed even with no jobs
    for table in all_tables():  # one GROUP BY per job table (tables.py)
        for task, status, n in (table.model.objects.using(alias).order_by().values_list("task", "status")
                                .annotate(n=Count("id"))):
            counts[task][status] += n
    names = sorted(counts)
    lengths, redis_error = _redis_lengths(names, declared) if redis else ({}, None)
    oldest = _oldest_due(alias, names, now)
    minute = _finished_since(alias, now - timedelta(minutes=1))
    hour = _finished_since(alias, now - timedelta(hours=1))
    tasks = tuple(TaskStats(
        name=n, declared=n in declared, counts=dict(counts[n]),
        oldest_due_seconds=_age(now, oldest[n]),
        queued_in_redis=lengths.get(n),
        done_last_minute=minute.get((n, Status.DONE), 0), failed_last_minute=minute.get((n, Status.FAILED), 0),
        done_last_hour=hour.get((n, Status.DONE), 0), failed_last_hour=hour.get((n, Status.FAILED), 0),
    ) for n in names)
    workers, orphans = _workers(alias, now, declared)
    totals = dict.fromkeys(ALL_STATUSES, 0)
    for t in tasks:
        for status, n in t.counts.items():
            totals[status] += n
    return Snapshot(taken_at=now, tasks=tasks, workers=workers, orphans=orphans, redis_error=redis_error,
                    totals=totals, schedules=_schedules(alias, now))


def format_age(seconds: float | None) -> str:
    """``None`` → "-", else a short human duration: 42s, 5m03s, 2h10m, 3d04h."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else (now - then).total_seconds()
