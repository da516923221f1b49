"""Providers' hooks for jobs ended outside a worker: the sweeper's lease expiries and operators' commits.

A worker that commits a job's outcome calls its job function's ``meepo_after_commit`` (worker.py). A job can also
end without its worker: the sweeper moves an expired lease to ``failed``, ``done`` or ``zombie``, or an operator
commits it. Those commits call the task's ``on_finished`` hook (a provider's, see registry.OnFinished) once they
are durable — the Django Tasks backend sends ``task_finished`` there. A hook that raises is logged, never raised:
the commit it follows is done.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from .exceptions import MeepoError
from .registry import get_task
from .states import Status, Transition

log = logging.getLogger(__name__)

FINAL = (Status.DONE, Status.FAILED, Status.ZOMBIE)


def finished_elsewhere(transitions: Sequence[Transition], using: str) -> None:
    """Call ``on_finished`` of each task whose jobs these committed transitions ended."""
    ended: dict[str, list[int]] = defaultdict(list)
    for t in transitions:
        if t.status in FINAL:
            ended[t.task].append(t.id)
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
