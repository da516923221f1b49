"""Periodic jobs: ``MEEPO["SCHEDULE"]`` pushes a job at every tick of a cron expression, exactly once per tick.

A schedule is an entry of ``MEEPO["SCHEDULE"]`` (or a :func:`periodic` decorator above ``@task``)::

    "nightly-report": {"task": "reports", "cron": "0 3 * * *", "json": {"kind": "daily"},
                       "timezone": "Europe/Berlin", "missed": "latest", "priority": 0}

``task`` and ``cron`` are required; ``timezone`` defaults to ``settings.TIME_ZONE`` (UTC if unset), ``missed``
to ``"latest"``, ``json`` to no payload, ``priority`` to 0. Cron expressions are parsed by ``cronsim`` (five
fields, or six with seconds first), which is the optional extra ``django-meepo[cron]``.

**Exactly one job per tick.** Every sweeper (in ``meepo_consume`` and ``meepo_sweep``; not only the leader)
runs :meth:`Scheduler.step` in its tick. When a tick is due it INSERTs a :class:`~django_meepo.models.ScheduleTick`
row (UNIQUE on schedule name + tick) and pushes the job in ONE transaction; the push dispatches after the
commit. A duplicate-key error means another process won the tick: the transaction rolls back, nothing is
pushed. If the answer to the COMMIT is lost (a ``DatabaseError``), the next step tries the tick again, and the
unique key refuses it if the first COMMIT went through: never two jobs for one tick.

**Cheap when nothing is due.** Each process keeps the next tick of each schedule in memory; the database is
asked only at start (the last recorded tick, for the missed policy) and when a tick is due.

**Missed ticks** (every sweeper was down at the tick): ``"latest"`` runs the latest missed tick once when a
sweeper comes back (a day of downtime of a ``*/5`` schedule gives one job, not 288); ``"skip"`` runs only the
ticks that come due while a sweeper runs. A tick is *on time* when a sweeper sees it within
:data:`ON_TIME_SECONDS`; a later one is *missed*. A schedule with no recorded tick (new) starts with its first
on-time tick under either policy: it never makes up ticks from before it existed.

**DST** (what cronsim does, and so what django-meepo does; tests/unit/test_schedule.py holds it):

* an expression with a fixed minute and hour (``30 2 * * *``) follows the wall clock in its zone: a time in
  the hour skipped in spring runs at the first valid minute after it (02:30 → 03:00 CEST, once); a time in the
  hour repeated in autumn runs once, at its first occurrence (02:30 CEST, not 02:30 CET);
* an expression with ``*`` in its minute or hour field (``*/15 * * * *``, ``0 * * * *``) follows elapsed
  time: the skipped wall-clock times do not occur, and the repeated hour's ticks occur twice (each is its own
  UTC instant, so each gets its job).

Ticks are stored in UTC, so the unique key never confuses 02:30 CEST with 02:30 CET.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone as dj_timezone

from .conf import get_settings
from .exceptions import ConfigurationError, InvalidPayload, MeepoError

if TYPE_CHECKING:
    from .registry import Task

log = logging.getLogger(__name__)

KEYS = ("task", "cron", "json", "timezone", "missed", "priority")
REQUIRED = ("task", "cron")
MISSED_POLICIES = ("latest", "skip")
NAME_MAX = 100  # ScheduleTick.name
ON_TIME_SECONDS = 60.0
TICK_HISTORY = timedelta(days=30)  # older ScheduleTick rows of a schedule are deleted when it wins a new tick
E_ENTRY, E_TASK, E_CRONSIM = "meepo.E009", "meepo.E010", "meepo.E011"
_NO_JSON: Any = object()


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with ``MEEPO["SCHEDULE"]`` (a system check error with ``id``)."""

    id: str
    message: str
    hint: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """One valid entry of ``MEEPO["SCHEDULE"]``."""

    name: str
    task: str
    cron: str
    zone: ZoneInfo
    missed: str
    payload: bytes
    priority: int

    def next_after(self, moment: datetime) -> datetime | None:
        """The first tick strictly after ``moment`` (aware UTC), or None if there is none within 50 years."""
        from cronsim import CronSim

        try:
            return next(CronSim(self.cron, moment.astimezone(self.zone))).astimezone(UTC)
        except StopIteration:
            return None

    def latest_at(self, moment: datetime) -> datetime | None:
        """The last tick at or before ``moment`` (aware UTC), or None if there is none within 50 years."""
        from cronsim import CronSim

        start = (moment + timedelta(seconds=1)).replace(microsecond=0)  # reverse steps back 1 s first
        try:
            return next(CronSim(self.cron, start.astimezone(self.zone), reverse=True)).astimezone(UTC)
        except StopIteration:
            return None


def cronsim_missing() -> bool:
    try:
        import cronsim  # noqa: F401
    except ImportError:
        return True
    return False


def parse(name: Any, entry: Any, *, where: str = "") -> tuple[Schedule | None, list[Problem]]:
    """One entry of ``MEEPO["SCHEDULE"]`` as a :class:`Schedule`, or None and every problem found in it
    (``where`` names the entry in the messages; default ``MEEPO['SCHEDULE'][name]``)."""
    where = where or f"MEEPO['SCHEDULE'][{name!r}]"
    if not isinstance(name, str) or not name or len(name) > NAME_MAX or any(c.isspace() for c in name):
        return None, [Problem(E_ENTRY, f"{where}: a schedule's name must be a non-empty string of at most "
                                       f"{NAME_MAX} characters without spaces")]
    if not isinstance(entry, Mapping):
        return None, [Problem(E_ENTRY, f"{where} must be a dict, not {type(entry).__name__}",
                              'E.g. {"task": "reports", "cron": "0 3 * * *"}.')]
    problems = [Problem(E_ENTRY, f"{where} has an unknown key {k!r}", f"Known keys: {', '.join(KEYS)}.")
                for k in entry if k not in KEYS]
    problems += [Problem(E_ENTRY, f"{where} lacks {k!r}", 'E.g. {"task": "reports", "cron": "0 3 * * *"}.')
                 for k in REQUIRED if k not in entry]
    task, cron = entry.get("task"), entry.get("cron")
    if "task" in entry and (not isinstance(task, str) or not task):
        problems.append(Problem(E_ENTRY, f"{where}['task'] must be a task name, not {task!r}"))
    if "cron" in entry and (problem := _cron_problem(cron)):
        problems.append(Problem(E_ENTRY, f"{where}['cron'] {problem}",
                                "Five fields (minute hour day-of-month month day-of-week), e.g. '*/5 * * * *'."))
    zone, problem = _zone(entry.get("timezone"))
    if problem:
        problems.append(Problem(E_ENTRY, f"{where}['timezone'] {problem}", "An IANA name, e.g. 'Europe/Berlin'."))
    missed = entry.get("missed", "latest")
    if missed not in MISSED_POLICIES:
        problems.append(Problem(E_ENTRY, f"{where}['missed'] must be 'latest' or 'skip', not {missed!r}",
                                "'latest' runs the latest missed tick once after downtime; 'skip' only future "
                                "ticks."))
    payload, problem = _payload(entry.get("json", _NO_JSON))
    if problem:
        problems.append(Problem(E_ENTRY, f"{where}['json'] {problem}"))
    priority = entry.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or not -100 <= priority <= 100:
        problems.append(Problem(E_ENTRY, f"{where}['priority'] must be an integer from -100 to 100, not "
                                         f"{priority!r}"))
    if problems or zone is None:
        return None, problems
    return Schedule(name=name, task=str(task), cron=str(cron), zone=zone, missed=str(missed), payload=payload,
                    priority=priority), []


def _cron_problem(cron: Any) -> str | None:
    if not isinstance(cron, str) or not cron.strip():
        return f"must be a cron expression (a string), not {cron!r}"
    if cronsim_missing():
        return None  # reported once, as meepo.E011
    from cronsim import CronSim, CronSimError

    try:
        CronSim(cron, datetime.now(UTC))
    except CronSimError as exc:
        return f"{cron!r} is not a valid cron expression: {exc}"
    return None


def _zone(name: Any) -> tuple[ZoneInfo | None, str | None]:
    if name is None:
        name = getattr(settings, "TIME_ZONE", None) or "UTC"
    if not isinstance(name, str) or not name:
        return None, f"must be a time zone name, not {name!r}"
    try:
        return ZoneInfo(name), None
    except (ZoneInfoNotFoundError, ValueError):
        return None, f"{name!r} is not a known time zone"


def _payload(value: Any) -> tuple[bytes, str | None]:
    if value is _NO_JSON:
        return b"", None
    from .push import check_size, encode_payload

    try:
        return check_size(encode_payload(json=value)), None
    except InvalidPayload as exc:
        return b"", str(exc)


_decorated: dict[str, dict[str, Any]] = {}


def periodic(cron: str, *, name: str | None = None, json: Any = _NO_JSON, timezone: str | None = None,
             missed: str = "latest", priority: int = 0) -> Callable[[Task], Task]:
    """Declare a schedule for the task below it: ``@periodic("0 3 * * *", timezone="Europe/Berlin")`` over
    ``@task("reports")``. The schedule is named ``name`` (default: the task's name); an entry of that name in
    ``MEEPO["SCHEDULE"]`` replaces it (so settings may change a decorated schedule without a deploy).

    Bad input raises ``ConfigurationError`` naming every problem at import, and declares nothing; a function
    that is not a ``@task`` raises ``TypeError``.
    """

    def decorate(target: Task) -> Task:
        from .registry import Task

        if not isinstance(target, Task):
            raise TypeError(f"@periodic goes above @task (it decorates a Task, not {type(target).__name__})")
        entry: dict[str, Any] = {"task": target.name, "cron": cron, "missed": missed, "priority": priority}
        if json is not _NO_JSON:
            entry["json"] = json
        if timezone is not None:
            entry["timezone"] = timezone
        key = target.name if name is None else name
        found = parse(key, entry, where=f"@periodic schedule {key!r}")[1]
        if cronsim_missing():
            found.append(Problem(E_CRONSIM, "@periodic needs the cron parser cronsim",
                                 "pip install django-meepo[cron]"))
        if found:
            raise ConfigurationError("; ".join(p.message + (f" ({p.hint})" if p.hint else "") for p in found))
        _decorated[key] = entry
        return target

    return decorate


def entries() -> dict[Any, Any]:
    """Every declared schedule: ``@periodic`` ones (after autodiscovery), then ``MEEPO["SCHEDULE"]`` (wins)."""
    from .registry import autodiscover

    autodiscover()
    return {**_decorated, **get_settings().schedule}


def problems() -> list[Problem]:
    """Every problem of ``MEEPO["SCHEDULE"]`` (for system checks); the whole setting not being a dict is E009 too."""
    raw = entries()
    if not raw:
        return []
    found: list[Problem] = []
    if cronsim_missing():
        found.append(Problem(E_CRONSIM, "MEEPO['SCHEDULE'] is set but the cron parser cronsim is not installed",
                             "pip install django-meepo[cron]"))
    from .registry import is_known

    for name, entry in raw.items():
        schedule, errors = parse(name, entry)
        found += errors
        if schedule is not None and not is_known(schedule.task):
            found.append(Problem(E_TASK, f"MEEPO['SCHEDULE'][{name!r}] names an unknown task {schedule.task!r}",
                                 "Declare it in MEEPO['TASKS'] or with @django_meepo.task."))
    return found


def schedules() -> list[Schedule]:
    """The valid schedules of ``MEEPO["SCHEDULE"]`` (empty without cronsim; the checks report what is wrong)."""
    raw = entries()
    if not raw or cronsim_missing():
        return []
    return [s for s in (parse(n, e)[0] for n, e in raw.items()) if s is not None]


def get_schedule(name: str) -> Schedule:
    """The schedule ``name``; ConfigurationError if it is not declared or not valid."""
    for schedule in schedules():
        if schedule.name == name:
            return schedule
    raise ConfigurationError(f"no valid schedule {name!r} in MEEPO['SCHEDULE'] (run manage.py check)")


def aware(moment: datetime) -> datetime:
    """``moment`` as aware UTC (the sweeper's ``now`` is naive local time when ``USE_TZ`` is False)."""
    if dj_timezone.is_naive(moment):
        moment = dj_timezone.make_aware(moment, dj_timezone.get_default_timezone())
    return moment.astimezone(UTC)


def stored(moment: datetime) -> datetime:
    """An aware UTC time in the form the database takes (naive local time when ``USE_TZ`` is False)."""
    return moment if settings.USE_TZ else dj_timezone.make_naive(moment, dj_timezone.get_default_timezone())


def last_ticks(names: list[str], *, using: str) -> dict[str, datetime]:
    """The latest recorded tick of each schedule in ``names`` (aware UTC), in one query."""
    from .models import ScheduleTick

    rows = (ScheduleTick.objects.using(using).filter(name__in=names).order_by().values_list("name")
            .annotate(last=Max("tick")))
    return {n: aware(t) for n, t in rows if t is not None}


@dataclass(slots=True)
class _State:
    schedule: Schedule
    next_due: datetime | None = None  # None: not started yet (ask the database for the last tick)
    done: bool = False  # no tick within 50 years: nothing more to do


class Scheduler:
    """The schedule part of a sweeper's tick: pushes the job of each due tick, once across all processes."""

    def __init__(self, *, using: str, entries: list[Schedule] | None = None) -> None:
        self.using = using
        self._states = [_State(s) for s in (schedules() if entries is None else entries)]
        self._failing = False

    def step(self, now: datetime) -> int:
        """Push the jobs of the ticks due at ``now``; returns how many this process pushed.

        Without a due tick this reads no database. A ``DatabaseError`` (the database down, the migration not
        applied yet) is logged once per outage and the tick is tried again at the next step; the sweeper's
        other work goes on.
        """
        now = aware(now)
        due = [s for s in self._states if not s.done and (s.next_due is None or now >= s.next_due)]
        if not due:
            return 0
        try:
            pushed = self._step(due, now)
        except DatabaseError as exc:
            if not self._failing:
                log.warning("meepo: schedules could not be run (%s); trying again at the next sweep", exc)
            self._failing = True
            return 0
        self._failing = False
        return pushed

    def _step(self, due: list[_State], now: datetime) -> int:
        fresh = [s.schedule.name for s in due if s.next_due is None]
        recorded = last_ticks(fresh, using=self.using) if fresh else {}
        pushed = 0
        for state in due:
            schedule = state.schedule
            tick = schedule.latest_at(now)
            if tick is not None and self._should_run(state, tick, now, recorded.get(schedule.name)):
                pushed += self.fire(schedule, tick)
            following = schedule.next_after(now)
            state.next_due, state.done = following, following is None
        return pushed

    @staticmethod
    def _should_run(state: _State, tick: datetime, now: datetime, last: datetime | None) -> bool:
        """A tick this process has not tried: on time, or missed under "latest" when a tick was recorded before."""
        started = state.next_due is not None  # then ``tick`` is after every tick this process tried
        if not started and last is not None and tick <= last:
            return False  # already done (by whichever process)
        if (now - tick).total_seconds() <= ON_TIME_SECONDS:
            return True
        return state.schedule.missed == "latest" and (started or last is not None)

    def fire(self, schedule: Schedule, tick: datetime) -> int:
        """Record ``tick`` and push its job in one transaction; 1 if this process won the tick, else 0.

        A duplicate key (another process recorded the tick) rolls back the push too. Any other ``DatabaseError``
        (the answer to the COMMIT lost included) is raised: the step tries the tick again later, and the unique
        key refuses it if the COMMIT went through. A task this process does not know (one deploy ahead of
        another) is left to a process that knows it.
        """
        from .clock import db_now
        from .models import ScheduleTick
        from .push import push
        from .registry import get_task

        try:
            get_task(schedule.task)
        except MeepoError as exc:
            log.warning("meepo: schedule %s: tick %s left to another process: %s", schedule.name, tick, exc)
            return 0
        try:
            with transaction.atomic(using=self.using):
                row = ScheduleTick.objects.using(self.using).create(
                    name=schedule.name, tick=stored(tick), created_at=db_now(self.using))
                job = push(schedule.task, schedule.payload, priority=schedule.priority, using=self.using)
                ScheduleTick.objects.using(self.using).filter(pk=row.pk).update(job_id=job.id)
        except IntegrityError:
            return 0  # another process won the tick
        log.info("meepo: schedule %s: pushed %s#%d for the tick at %s", schedule.name, schedule.task, job.id,
                 tick.isoformat(), extra={"task": schedule.task, "job_id": job.id})
        self._prune(schedule, tick)
        return 1

    def _prune(self, schedule: Schedule, tick: datetime) -> None:
        """Delete the schedule's ticks older than :data:`TICK_HISTORY` (a failure is left to the next win)."""
        from .models import ScheduleTick

        try:
            ScheduleTick.objects.using(self.using).filter(name=schedule.name,
                                                          tick__lt=stored(tick - TICK_HISTORY)).delete()
        except DatabaseError as exc:
            log.warning("meepo: schedule %s: old ticks not deleted (%s)", schedule.name, exc)
