"""Apply one statement of the state machine and know exactly what it did — the only way a transition is written.

:func:`apply` runs a conditional statement that writes a fresh ``token`` into every row it changes, and returns
the rows it changed, read back by that token whenever the row count does not prove them all:

* **A short count is never the answer.** A count below the number of rows targeted may mean a row moved on (a
  stale cid), or that an earlier copy of this very statement committed first and this copy matched nothing (its
  answer had been lost while it waited on a row lock, the check found nothing yet, and the statement ran again).
  Both copies carry the same token, so reading back by token tells them apart: the rows carrying it are won.
* **A lost answer is settled by the effect, not assumed.** When the connection dies before the answer arrives
  (``KILL CONNECTION``, "server has gone away", a read timeout), :func:`db.run_checked` reads back on a new
  connection with the same function — the rows carrying the token, or for a lease renewal the leases that reach
  the new time — and runs the statement again only when its effect is not there. Running it again is safe: it is
  conditional on the cids it was built with, and writes the same token.
* **Rows written beside it share its transaction** (``also``: attempt rows), so they exist exactly when the
  transition does; the verify after a lost COMMIT answer then finds both or neither.
* **Inside a caller's transaction nothing is retried**: a lost connection propagates (the caller's transaction
  is gone with it).

Rows come back as named records (:class:`Won`, :class:`JobRow`), never as positional tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import transaction
from django.utils import timezone

from .db import job_model, run_checked
from .exceptions import CommitConflict, JobNotFound
from .sql import Statement, sql_for
from .states import ClaimedJob, Ref, Status
from .tables import for_task

if TYPE_CHECKING:
    from .models import AbstractJob

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Won:
    """A row a statement changed: its id and its new cid."""

    id: int
    cid: int


@dataclass(frozen=True, slots=True)
class JobRow:
    """What an operator's change (or a conflict message) reads of a job first."""

    id: int
    task: str
    cid: int
    status: str
    priority: int
    attempts: int
    failed_times: int
    worker: str
    started_at: datetime | None
    finished_at: datetime | None

    FIELDS = ("id", "task", "cid", "status", "priority", "attempts", "failed_times", "worker", "started_at",
              "finished_at")


def read_rows(using: str, ids: Sequence[int], *, model: type[AbstractJob] | None = None,
              **filters: Any) -> dict[int, JobRow]:
    rows = (model or job_model()).objects.using(using).filter(id__in=list(ids), **filters).values_list(*JobRow.FIELDS)
    return {row[0]: JobRow(*row) for row in rows}


def read_won(using: str, ids: Sequence[int], token: str, *, model: type[AbstractJob] | None = None) -> list[Won]:
    """The rows of ``ids`` that carry ``token``: those the statement that wrote it changed."""
    return [Won(i, c) for i, c in (model or job_model()).objects.using(using).filter(id__in=list(ids), token=token)
            .values_list("id", "cid")]


def apply(using: str, statement: Statement, targets: Mapping[int, int], *, read: Callable[[], list[R]],
          full: Callable[[], list[R]] | None = None, also: Callable[[list[R]], object] | None = None,
          settle: Callable[[], list[R] | None] | None = None, tries: int = 8) -> list[R]:
    """Run ``statement`` on the rows ``targets`` (id → the cid it is conditioned on); return the rows it changed.

    ``read`` reads back the rows the statement changed (by its token, or by its effect). ``full`` builds the
    result without a read when the row count says every target changed (the hot path of a batch that wins
    whole); without it every call reads back. ``also`` writes more in the same transaction, given the rows won.

    What if the answer is lost? ``read`` on a new connection decides; the statement runs again only when its
    effect is absent (``settle``, when given, decides that instead of ``read``: it returns the rows changed, or
    ``None`` when the statement did not run). What if it runs twice? The second copy matches nothing (the cids
    moved) and the read finds the first copy's rows. What if the next statement (``also``) raises? The
    transaction rolls back whole: the transition did not happen and the caller sees the error.
    """
    expected = len(targets)

    def run() -> list[R]:
        with transaction.atomic(using=using) if also else nullcontext():
            changed = sql_for(using).execute(statement.sql, statement.params)
            won = full() if full is not None and changed == expected else read()
            if also is not None and won:
                also(won)
        return won

    def verify() -> list[R] | None:
        return settle() if settle is not None else (read() or None)

    return run_checked(using, run, verify, what=f"{statement.name} of {expected} job(s)", tries=tries)


def apply_one(using: str, statement: Statement, job_id: int, cid: int, token: str, *, what: str,
              also: Callable[[], object] | None = None, tries: int = 8,
              model: type[AbstractJob] | None = None) -> Won:
    """:func:`apply` on one row of ``model``'s table (the statement's; default ``meepo_job``); a row that did
    not change raises :class:`CommitConflict` naming its state (``what``: the change, for the message)."""
    won = apply(using, statement, {job_id: cid}, read=lambda: read_won(using, [job_id], token, model=model),
                full=lambda: [Won(job_id, cid + 1)], also=(lambda _: also()) if also else None, tries=tries)
    if not won:
        raise conflict(using, job_id, cid, what, model=model)
    return won[0]


def apply_many(using: str, statement: Statement, targets: Mapping[int, int], token: str, *,
               also: Callable[[list[Won]], object] | None = None, tries: int = 8,
               model: type[AbstractJob] | None = None) -> list[Won]:
    """:func:`apply` on a batch of ``model``'s table, read back by token unless every target changed."""
    ids = list(targets)
    return apply(using, statement, targets, read=lambda: read_won(using, ids, token, model=model),
                 full=lambda: [Won(i, c + 1) for i, c in targets.items()], also=also, tries=tries)


def conflict(using: str, job_id: int, cid: int, what: str, *,
             model: type[AbstractJob] | None = None) -> CommitConflict:
    """The error for a one-row change that found the job elsewhere: its state now, and that nothing was written."""
    row = (model or job_model()).objects.using(using).filter(id=job_id).values_list("cid", "status").first()
    if row is None:
        return CommitConflict(f"cannot {what}: job {job_id} no longer exists", job_id=job_id, expected_cid=cid)
    return CommitConflict(
        f"cannot {what}: it is now {row[1]!r} at cid {row[0]}, not at cid {cid} (repushed, rescued or "
        f"committed elsewhere); nothing was written",
        job_id=job_id, expected_cid=cid, actual_cid=row[0], actual_status=row[1])


def current(using: str, job_id: int, *, model: type[AbstractJob] | None = None) -> JobRow:
    row = read_rows(using, [job_id], model=model).get(job_id)
    if row is None:
        where = "" if model is None or model is job_model() else f" in {model._meta.db_table}"
        raise JobNotFound(f"no job with id {job_id}{where}")
    return row


def held_by(task: str, refs: Sequence[Ref], *, worker: str, using: str) -> list[ClaimedJob]:
    """The refs that ``worker`` claimed (``doing`` at cid + 1 under its name): how a claim whose transaction's
    answer was lost is settled (a claim is the only way there)."""
    if not refs:
        return []
    want = {r.id: r.cid + 1 for r in refs}
    model = for_task(task).model
    rows = (model.objects.using(using).filter(id__in=list(want), status=Status.DOING, worker=worker[:200])
            .values_list("id", "cid", "payload", "failed_times", "attempts", "priority", "started_at"))
    return [ClaimedJob(id=i, task=task, cid=c, payload=bytes(p or b""), failed_times=f, attempts=a, priority=pr,
                       started_at=s or timezone.now())
            for i, c, p, f, a, pr, s in rows if want.get(i) == c]
