"""Operations on existing jobs, for code, the admin and management commands: state machine + dispatch.

* :func:`repush` — force-repush from any status (Meepo's ``Repush``), fencing off every older copy.
* :func:`commit` — Meepo's ``Commit(id, cid, status)``: a job function's commit from outside its context.
* :func:`operator_commit` — what the admin buttons do: commit done/failed at the current cid, or repush.
* :func:`repush_many` / :func:`operator_commit_many` — the same for a selection.

A job made due by any of these is dispatched after the surrounding transaction commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from . import statemachine as sm
from .conf import get_settings
from .exceptions import CommitConflict, CommitNotAllowed, MeepoError
from .hooks import transitions_ended
from .models import Job
from .push import dispatch_on_commit
from .registry import get_task
from .states import Status


def _using(using: str | None) -> str:
    return using or get_settings().database


def _dispatch(transitions: Sequence[sm.Transition], using: str, now: datetime) -> None:
    items = [d for t in transitions if (d := t.dispatchable(now)) is not None]
    if items:
        dispatch_on_commit(items, using=using)


def repush(job_id: int, *, cid: int | None = None, using: str | None = None) -> sm.Transition:
    """Run a job again whatever its status: todo, due now, cid + 1, failed_times back to 0."""
    alias, now = _using(using), timezone.now()
    result = sm.repush(job_id, using=alias, cid=cid, now=now)
    _dispatch([result], alias, now)
    return result


def repush_many(job_ids: Sequence[int], *, using: str | None = None,
                statuses: Sequence[str] | None = None) -> list[sm.Transition]:
    alias, now = _using(using), timezone.now()
    result = sm.repush_many(job_ids, using=alias, now=now, statuses=statuses)
    _dispatch(result, alias, now)
    return result


def operator_commit(job_id: int, status: str, *, cid: int | None = None, using: str | None = None,
                    note: str = "") -> sm.Transition:
    """Commit done or failed (from todo, doing or zombie) at the current cid — or ``cid`` if given; todo repushes."""
    alias, now = _using(using), timezone.now()
    result = sm.operator_commit(job_id, status, using=alias, cid=cid, now=now, note=note)
    _dispatch([result], alias, now)
    transaction.on_commit(lambda: transitions_ended([result], alias), using=alias)  # at once outside a transaction
    return result


def operator_commit_many(job_ids: Sequence[int], status: str, *,
                         using: str | None = None) -> tuple[list[sm.Transition], list[str]]:
    """Commit a selection one job at a time; returns what changed and a message per job that could not."""
    done: list[sm.Transition] = []
    refused: list[str] = []
    for job_id in job_ids:
        try:
            done.append(operator_commit(job_id, status, using=using))
        except (CommitConflict, CommitNotAllowed) as exc:
            refused.append(str(exc))
    return done, refused


def commit(job_id: int, cid: int, status: str, *, using: str | None = None) -> sm.Transition:
    """Meepo's ``Commit(id, cID, status)`` for a manual-mode job, with the cid its run was claimed at.

    Inside a job function prefer ``job.commit(status)``. A stale cid raises :class:`CommitConflict`.
    """
    alias = _using(using)
    job_id = sm.validate_id(job_id)
    cid = sm.validate_id(cid, "cid")
    status = sm.validate_status(status)
    row = (Job.objects.using(alias).filter(id=job_id)
           .values_list("task", "cid", "status", "failed_times", "attempts", "priority", "started_at", "worker")
           .first())
    if row is None:
        raise sm.JobNotFound(f"no job with id {job_id}")
    task_name, current_cid, current_status, failed_times, attempts, priority, started_at, worker = row
    task = get_task(task_name)
    if task.options.auto_commit:
        raise CommitNotAllowed(f"task {task_name!r} auto-commits (AUTO_COMMIT is True); commit is only for "
                               f"manual-mode tasks")
    if current_cid != cid or current_status != Status.DOING:
        raise CommitConflict(f"cannot commit job {job_id} {status!r} at cid {cid}: it is {current_status!r} at "
                             f"cid {current_cid}; nothing was written", job_id=job_id, expected_cid=cid,
                             actual_cid=current_cid, actual_status=current_status)
    claimed = sm.ClaimedJob(id=job_id, task=task_name, cid=cid, payload=b"", failed_times=failed_times,
                            attempts=attempts, priority=priority, started_at=started_at or timezone.now())
    now = timezone.now()
    result = sm.job_commit(task_name, claimed, status, task.options, worker=worker, using=alias, now=now)
    _dispatch([result], alias, now)
    return result


__all__ = ["MeepoError", "commit", "operator_commit", "operator_commit_many", "repush", "repush_many"]
