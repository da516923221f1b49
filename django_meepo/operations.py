"""Operator actions on many jobs at once — the admin's bulk actions and ``manage.py meepo_repush`` share them.

* :func:`select_jobs` builds the selection (ids, tasks, statuses, "not changed for") and validates every part of
  it before anything is written: bad input raises a :class:`~django_meepo.exceptions.MeepoError` naming it.
* :func:`repush_selection`, :func:`commit_selection` and :func:`cancel_selection` walk a selection in primary-key
  pages and change each page through the state machine (``operators.repush_many`` /
  ``operators.operator_commit_many`` / ``operators.cancel_many``), each job at its cid as read just before its
  page is written — so a job that changes meanwhile is left alone, never overwritten.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, QuerySet

from . import operators
from . import statemachine as sm
from .clock import db_now
from .conf import get_settings
from .exceptions import CommitNotAllowed, JobNotFound, UnknownTask
from .models import AbstractJob
from .registry import is_known
from .states import CANCEL_SOURCES, Status
from .tables import Table, for_task
from .tables import default as default_table

log = logging.getLogger(__name__)

PAGE_SIZE = 500
ProgressCallback = Callable[[int], None]


@dataclass(slots=True)
class BulkResult:
    """How a bulk action went: ``changed`` jobs, ``skipped`` ones (not eligible or changed meanwhile)."""

    changed: int = 0
    skipped: int = 0
    messages: list[str] = field(default_factory=list)


def table_of(tasks: Sequence[str]) -> Table:
    """The one job table of ``tasks`` (tables.py), the shared one without tasks; ValueError when they keep their
    jobs in different tables (a selection is of one table: ids are unique per table only)."""
    found = {name: for_task(name) for name in tasks}
    distinct = {t.name for t in found.values()}
    if len(distinct) > 1:
        where = ", ".join(f"{name!r} in {t.name}" for name, t in found.items())
        raise ValueError(f"the tasks keep their jobs in different tables ({where}): select the jobs of one table "
                         f"at a time")
    return next(iter(found.values())) if found else default_table()


def select_jobs(*, ids: Sequence[object] = (), tasks: Sequence[str] = (), statuses: Sequence[str] = (),
                unchanged_for: timedelta | None = None, using: str | None = None,
                now: datetime | None = None) -> QuerySet[AbstractJob]:
    """The jobs matching every given criterion, in the table of ``tasks`` (the shared ``meepo_job`` without
    tasks: ids alone name jobs there). ``unchanged_for``: last changed (``updated_at``) longer ago."""
    alias = using or get_settings().database
    model = table_of(tasks).model
    qs = model.objects.using(alias).all()
    if ids:
        wanted = sorted({sm.validate_id(i) for i in ids})
        found = set(qs.filter(id__in=wanted).values_list("id", flat=True))
        missing = [i for i in wanted if i not in found]
        if missing:
            raise JobNotFound(f"no job with id {', '.join(map(str, missing[:20]))}"
                              f"{' …' if len(missing) > 20 else ''}; nothing was changed")
        qs = qs.filter(id__in=wanted)
    for name in tasks:
        if not is_known(name) and not model.objects.using(alias).filter(task=name).exists():
            raise UnknownTask(f"unknown task {name!r}: it is not declared and no job of it exists")
    if tasks:
        qs = qs.filter(task__in=list(tasks))
    if statuses:
        qs = qs.filter(status__in=[sm.validate_status(s) for s in statuses])
    if unchanged_for is not None:
        if unchanged_for.total_seconds() <= 0:
            raise ValueError(f"the age must be positive, not {unchanged_for}")
        qs = qs.filter(updated_at__lt=(now or db_now(alias)) - unchanged_for)
    return qs


def count_by_status(queryset: QuerySet[AbstractJob]) -> dict[str, int]:
    """Selected jobs per status (only the statuses present)."""
    rows = queryset.order_by().values_list("status").annotate(n=Count("id"))
    return {status: n for status, n in rows}


def committable(queryset: QuerySet[AbstractJob]) -> QuerySet[AbstractJob]:
    """The jobs an operator may commit done or failed: those in todo, doing or zombie."""
    return queryset.filter(status__in=operators.OPERATOR_COMMIT_SOURCES)


def _pages(queryset: QuerySet[AbstractJob], size: int) -> Iterator[list[tuple[str, list[int]]]]:
    """Primary keys of ``queryset`` in ascending pages, by keyset (rows that change status are not seen twice),
    each page grouped by task: the operators' verbs name the task of the ids they are given (tables.py)."""
    last = 0
    while True:
        rows = list(queryset.filter(id__gt=last).order_by("id").values_list("id", "task")[:size])
        if not rows:
            return
        by_task: dict[str, list[int]] = {}
        for job_id, task in rows:
            by_task.setdefault(task, []).append(job_id)
        yield list(by_task.items())
        last = rows[-1][0]
        if len(rows) < size:
            return


def repush_selection(queryset: QuerySet[AbstractJob], *, statuses: Sequence[str] | None = None,
                     page_size: int = PAGE_SIZE, on_progress: ProgressCallback | None = None) -> BulkResult:
    """Repush every job of ``queryset``; with ``statuses``, only those still in one of them when repushed."""
    result = BulkResult()
    for page in _pages(queryset, page_size):
        for task, ids in page:
            won = operators.repush_many(ids, using=queryset.db, statuses=statuses, task=task)
            result.changed += len(won)
            result.skipped += len(ids) - len(won)
        if on_progress is not None:
            on_progress(result.changed + result.skipped)
    log.info("meepo: repushed %d job(s) (%d changed meanwhile and were left alone)", result.changed,
             result.skipped)
    return result


def commit_selection(queryset: QuerySet[AbstractJob], status: str, *, page_size: int = PAGE_SIZE,
                     on_progress: ProgressCallback | None = None) -> BulkResult:
    """Commit ``status`` (done or failed) for every committable job of ``queryset``, one conditional UPDATE each."""
    status = sm.validate_status(status)
    if status not in (Status.DONE, Status.FAILED):
        raise CommitNotAllowed(f"a bulk commit is 'done' or 'failed', not {status!r} (repush to run jobs again)")
    result = BulkResult()
    for page in _pages(committable(queryset), page_size):
        for task, ids in page:
            done, refused = operators.operator_commit_many(ids, status, using=queryset.db, task=task)
            result.changed += len(done)
            result.skipped += len(refused)
            result.messages += refused
        if on_progress is not None:
            on_progress(result.changed + result.skipped)
    log.info("meepo: committed %d job(s) %r (%d refused)", result.changed, status, result.skipped)
    return result


def _cancel_page(queryset: QuerySet[AbstractJob], task: str, ids: list[int], note: str) -> operators.CancelOutcome:
    try:
        return operators.cancel_many(ids, using=queryset.db, note=note, task=task)
    except JobNotFound:  # purged between the page's read and its cancel: the rest of the page is read again
        left = list(queryset.model.objects.using(queryset.db).filter(id__in=ids).values_list("id", flat=True))
        return operators.cancel_many(left, using=queryset.db, note=note, task=task)


def cancel_selection(queryset: QuerySet[AbstractJob], *, note: str = "", page_size: int = PAGE_SIZE,
                     on_progress: ProgressCallback | None = None) -> BulkResult:
    """Cancel every job of ``queryset`` still in todo, doing or zombie, a page (one UPDATE) at a time; a job that
    changed meanwhile is left alone and counted in ``skipped`` with its message."""
    result = BulkResult()
    for page in _pages(queryset.filter(status__in=CANCEL_SOURCES), page_size):
        for task, ids in page:
            outcome = _cancel_page(queryset, task, ids, note)
            result.changed += len(outcome.cancelled)
            result.skipped += len(outcome.refused)
            result.messages += outcome.refused
        if on_progress is not None:
            on_progress(result.changed + result.skipped)
    log.info("meepo: cancelled %d job(s) (%d left alone)", result.changed, result.skipped)
    return result
