"""Providers' hook for jobs that ended: called once the commit that ended them is durable.

A job ends (``done``, ``failed``, ``zombie`` or ``cancelled``) by its worker's commit, by the sweeper (an expired
lease moved to the task's zombie destination) or by an operator's commit or cancel. Each of them calls
:func:`jobs_ended` after its commit, which calls the task's ``on_finished`` hook (a provider's, see
registry.OnFinished) once per task with the ids — the Django Tasks backend sends ``task_finished`` there. A
hook that raises is logged, never raised: the commit it follows is done.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence

from .exceptions import MeepoError
from .registry import get_task
from .states import Status, Transition

log = logging.getLogger(__name__)

FINAL = (Status.DONE, Status.FAILED, Status.ZOMBIE, Status.CANCELLED)


def jobs_ended(jobs: Iterable[tuple[str, int, str]], using: str) -> None:
    """Call ``on_finished`` of each task for its jobs, given as (task, id, new status), that ended."""
    ended: dict[str, list[int]] = defaultdict(list)
    for task, job_id, status in jobs:
        if status in FINAL:
            ended[task].append(job_id)
    for name, ids in ended.items():
        try:
            hook = get_task(name).on_finished
        except MeepoError:  # no longer declared, or misconfigured (reported by checks)
            continue
        if hook is None:
            continue
        try:
            hook(ids, using)
        except Exception:
            log.exception("meepo: the on_finished hook of task %s raised for job(s) %s", name,
                          ", ".join(map(str, ids[:20])), extra={"task": name})


def transitions_ended(transitions: Sequence[Transition], using: str) -> None:
    """:func:`jobs_ended` for committed transitions (the sweeper's, an operator's)."""
    jobs_ended(((t.task, t.id, t.status) for t in transitions), using)
