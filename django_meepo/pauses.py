"""Pausing and resuming tasks: while a task is paused no worker claims its jobs.

A pause is a row in ``meepo_task_pause`` (:class:`~django_meepo.models.TaskPause`), so it holds across worker
restarts and for every worker and host. Pushes are still accepted (and dispatched: the entries wait in Redis or in
the table), jobs already running finish, jobs already claimed and waiting in a worker's hand still run; nothing
more is claimed until the task is resumed. Pausing changes no job row: a job's status and cid are untouched.

Workers read the paused set through :class:`PausedSet` at most once a second (``REFRESH`` seconds), so a pause or
resume takes effect within about a second, and the fetch path pays no database round trip of its own.

The adversary's view: :func:`pause` and :func:`resume` are idempotent (a pause whose answer was lost, run again,
finds its row; a resume run twice deletes nothing the second time), and validate every name before writing
anything, in one transaction. A worker whose read of the paused set fails keeps the set it last read and logs
it: a paused task stays paused through a database hiccup (and a task resumed meanwhile waits for the next read).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

from django.db import DatabaseError, IntegrityError, transaction

from .clock import db_now
from .conf import get_settings
from .db import discard_connection, is_connection_lost
from .exceptions import UnknownTask
from .models import TaskPause
from .registry import get_task, task_names

log = logging.getLogger(__name__)

REFRESH = 1.0  # seconds: how stale a worker's view of the paused set may be


def _names(tasks: Iterable[str], *, allow: Callable[[str], bool] = lambda name: False) -> list[str]:
    """The distinct task names, in order; UnknownTask naming every undeclared one (unless ``allow`` lets it)."""
    names = list(dict.fromkeys(tasks))
    if not names:
        raise ValueError("name at least one task")
    declared = set(task_names())
    unknown = [n for n in names if n not in declared and not allow(n)]
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise UnknownTask(f"unknown task(s) {', '.join(map(repr, unknown))} (declared tasks: {known})")
    for name in names:
        if name in declared:
            get_task(name)  # a misconfigured task raises ConfigurationError here, before anything is written
    return names


def pause(*tasks: str, by: str = "", using: str | None = None) -> list[str]:
    """Pause ``tasks`` (declared task names); returns the ones that were not paused already.

    Nothing is written if any name is unknown (UnknownTask). ``by`` says who paused (kept, shown in the admin).
    """
    names = _names(tasks)
    using = using or get_settings().database
    newly = []
    with transaction.atomic(using=using):
        now = db_now(using)
        existing = set(TaskPause.objects.using(using).filter(task__in=names).values_list("task", flat=True))
        for name in names:
            if name in existing:
                continue
            try:
                with transaction.atomic(using=using):
                    TaskPause.objects.using(using).create(task=name, paused_at=now, paused_by=by[:200])
            except IntegrityError:  # paused meanwhile by someone else: paused either way
                continue
            newly.append(name)
    if newly:
        log.warning("meepo: paused %s%s", ", ".join(newly), f" (by {by})" if by else "")
    return newly


def resume(*tasks: str, using: str | None = None) -> list[str]:
    """Resume ``tasks``; returns the ones that were paused. A name that is neither declared nor paused is an
    error (UnknownTask, nothing written); a paused task no longer declared can still be resumed."""
    using = using or get_settings().database
    with transaction.atomic(using=using):
        rows = TaskPause.objects.using(using).filter(task__in=list(tasks))
        stored = set(rows.values_list("task", flat=True))
        names = _names(tasks, allow=stored.__contains__)
        resumed = [n for n in names if n in stored]
        TaskPause.objects.using(using).filter(task__in=resumed).delete()
    if resumed:
        log.warning("meepo: resumed %s", ", ".join(resumed))
    return resumed


def paused(using: str | None = None) -> list[TaskPause]:
    """The paused tasks' rows (task, paused_at, paused_by), by task name."""
    return list(TaskPause.objects.using(using or get_settings().database).order_by("task"))


class PausedSet:
    """A worker's cached view of which of its tasks are paused: read at most once every ``refresh`` seconds.

    Used by the worker's fetching thread only. A read that fails keeps the last set read (logged once until a
    read succeeds again); before any read succeeded, nothing is taken to be paused.
    """

    def __init__(self, tasks: Sequence[str], *, using: str, refresh: float = REFRESH,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.tasks = list(tasks)
        self.using = using
        self.refresh = refresh
        self.clock = clock
        self.current: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self._failing = False

    def get(self) -> frozenset[str]:
        now = self.clock()
        if now - self._read_at < self.refresh:
            return self.current
        self._read_at = now
        try:
            found = frozenset(TaskPause.objects.using(self.using).filter(task__in=self.tasks)
                              .values_list("task", flat=True))
        except DatabaseError as exc:
            if is_connection_lost(exc):
                discard_connection(self.using)
            if not self._failing:
                log.warning("meepo: could not read the paused tasks (%s); keeping the last known set: %s", exc,
                            ", ".join(sorted(self.current)) or "none paused")
                self._failing = True
            return self.current
        if self._failing:
            log.warning("meepo: read the paused tasks again: %s", ", ".join(sorted(found)) or "none paused")
            self._failing = False
        if found != self.current:
            log.info("meepo: paused tasks now: %s", ", ".join(sorted(found)) or "none")
        self.current = found
        return found
