"""The operators' transitions — for code, the admin and management commands — each one verb, whole.

* :func:`repush` — force-repush from any status (Meepo's ``Repush``), fencing off every older copy.
* :func:`operator_commit` — what the admin buttons do: commit done/failed at the current cid, or repush.
* :func:`commit` — Meepo's ``Commit(id, cid, status)``: a job function's commit from outside its context.
* :func:`repush_many` / :func:`operator_commit_many` — the same for a selection.
* :func:`cancel` / :func:`cancel_many` — todo, doing or zombie → cancelled: it never runs (again), a run still
  going is fenced off (its commit is refused) and told through its heartbeat (``job.cancelled``).

Like every verb of the state machine, each writes its conditional statement (``sql.py``), closes the attempt it
cuts short in the same transaction, and, once the commit is durable, dispatches what it made due and announces
what it ended (``effects.py``). ``using`` defaults to ``MEEPO["DATABASE"]``; times to the database's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import effects, metrics, sql, tables
from .checked import JobRow, Won, apply_many, apply_one, current, read_rows
from .clock import db_now
from .conf import get_settings
from .db import new_token
from .exceptions import CommitConflict, CommitNotAllowed, JobNotFound
from .models import AbstractAttempt, Attempt
from .registry import get_task
from .statemachine import job_commit
from .states import (
    CANCEL_SOURCES,
    REPUSH_RUNNING_DELAY,
    ClaimedJob,
    Status,
    Transition,
    validate_id,
    validate_status,
)
from .tables import Table
from .text import max_error_bytes, result_text

# An operator acts on the job's current cid; committing `todo` is a repush (allowed from any status).
OPERATOR_COMMIT_SOURCES = (Status.TODO, Status.DOING, Status.ZOMBIE)
OPERATOR_COMMIT_TARGETS = (Status.DONE, Status.FAILED, Status.TODO)


def _using(using: str | None) -> str:
    return using or get_settings().database


def _table(task: str | None) -> Table:
    """The table an operator's ids are in: ``task``'s (tables.py), or the shared ``meepo_job`` without one."""
    return tables.for_task(task) if task else tables.default()


def _current(alias: str, job_id: int, task: str | None, table: Table) -> JobRow:
    """The job ``job_id`` of ``table`` (of ``task``, when named); JobNotFound otherwise."""
    row = current(alias, job_id, model=table.model)
    if task and row.task != task:
        raise JobNotFound(f"no job with id {job_id} of task {task!r} (job {job_id} of {table.name} is a "
                          f"{row.task!r} job)")
    return row


def _rows(alias: str, ids: Sequence[int], task: str | None, table: Table, **filters: object) -> dict[int, JobRow]:
    if task:
        filters["task"] = task
    return read_rows(alias, ids, model=table.model, **filters)


def _closed_attempts(rows: dict[int, JobRow], *, using: str, now: datetime, reason: str, table: Table,
                     cut_short: str = Attempt.Outcome.SUPERSEDED) -> list[AbstractAttempt]:
    """The attempts an operator's change closes that no Attempt row records yet.

    Failures, expired leases and hand-backs are recorded when they happen; a run that ended ``done`` and a run
    still going (``doing``) are not. Without these rows a repush would erase that run's worker and times. Each
    is written in the transaction of the conditional UPDATE, which only wins at the cid these rows were read at.
    """
    open_runs = {i: r for i, r in rows.items()
                 if r.attempts and r.started_at is not None and r.status in (Status.DONE, Status.DOING)}
    if not open_runs:
        return []
    recorded = {(a.job_id, a.number) for a in table.attempts_of(using, open_runs)}
    return [table.attempt_row(job_id=i, number=r.attempts, worker=r.worker[:200], started_at=r.started_at,
                    finished_at=(r.finished_at or now) if r.status == Status.DONE else now,
                    outcome=Attempt.Outcome.DONE if r.status == Status.DONE else cut_short,
                    error="" if r.status == Status.DONE else reason)
            for i, r in open_runs.items() if (i, r.attempts) not in recorded]


def _recorder(using: str, attempts: list[AbstractAttempt], table: Table) -> Callable[[], object] | None:
    return (lambda: table.attempt.objects.using(using).bulk_create(attempts)) if attempts else None


def repush(job_id: int, *, cid: int | None = None, using: str | None = None, now: datetime | None = None,
           reset_failures: bool = True, task: str | None = None) -> Transition:
    """Run a job again whatever its status: → todo, due now, cid + 1 (fencing off every copy still running or
    queued); ``failed_times`` back to 0 unless ``reset_failures`` is False.

    With ``cid`` the repush applies only at that cid (what an operator saw); without it, at the current cid.
    ``task`` names the job's table (ids are unique per table); without it the id is one of ``meepo_job``.
    """
    alias = _using(using)
    table = _table(task)
    job_id = validate_id(job_id)
    if cid is not None:
        cid = validate_id(cid, "cid")
    now = now or db_now(alias)
    row = _current(alias, job_id, task, table)
    expected = row.cid if cid is None else cid
    token = new_token()
    statement = sql.repush(sql.sql_for(alias, table.name), [(job_id, expected)], token=token, now=now,
                           running_due=_running_due(now), reset_failures=reset_failures)
    closed = (_closed_attempts({job_id: row}, using=alias, now=now, reason="repushed by an operator", table=table)
              if row.cid == expected else [])
    won = apply_one(alias, statement, job_id, expected, token, what=f"repush job {job_id}",
                    also=_recorder(alias, closed, table), model=table.model)
    result = Transition(job_id, row.task, Status.TODO, won.cid, _due(row.status, now), row.priority)
    effects.after_transaction(alias, [result], now)
    return result


def _running_due(now: datetime) -> datetime:
    return now + timedelta(seconds=REPUSH_RUNNING_DELAY)


def _due(status: str, now: datetime) -> datetime:
    """When a repushed job is due, by the status it was read in. The statement decides by the status it finds;
    where they differ (the job moved meanwhile) the dispatch is early (the claim refuses a job not yet due, and
    the sweeper dispatches it when it is) or late (the sweeper dispatches a due job Redis lacks): never lost."""
    return _running_due(now) if status == Status.DOING else now


def repush_many(job_ids: Sequence[int], *, using: str | None = None, now: datetime | None = None,
                statuses: Sequence[str] | None = None, task: str | None = None) -> list[Transition]:
    """Repush many jobs (of ``task``'s table, see :func:`repush`) at their current cids in one statement;
    returns those repushed (others raced)."""
    alias = _using(using)
    table = _table(task)
    ids = sorted({validate_id(i) for i in job_ids})
    if not ids:
        return []
    now = now or db_now(alias)
    filters = {"status__in": [validate_status(s) for s in statuses]} if statuses is not None else {}
    rows = _rows(alias, ids, task, table, **filters)
    if not rows:
        return []
    token = new_token()
    statement = sql.repush(sql.sql_for(alias, table.name), [(i, r.cid) for i, r in rows.items()], token=token, now=now,
                           running_due=_running_due(now), reset_failures=True)
    closing = {a.job_id: a for a in _closed_attempts(rows, using=alias, now=now, reason="repushed by an operator",
                                                     table=table)}

    def record(won: list[Won]) -> None:  # only the rows won: their UPDATE matched the cid they were read at
        table.attempt.objects.using(alias).bulk_create([closing[w.id] for w in won if w.id in closing])

    won = apply_many(alias, statement, {i: r.cid for i, r in rows.items()}, token,
                     also=record if closing else None, model=table.model)
    changed = [Transition(w.id, rows[w.id].task, Status.TODO, w.cid, _due(rows[w.id].status, now),
                          rows[w.id].priority) for w in won]
    effects.after_transaction(alias, changed, now)
    return changed


def operator_commit(job_id: int, status: str, *, cid: int | None = None, using: str | None = None,
                    now: datetime | None = None, note: str = "", task: str | None = None) -> Transition:
    """Commit done or failed (from todo, doing or zombie) at the current cid — or ``cid`` if given; todo repushes."""
    status = validate_status(status)
    job_id = validate_id(job_id)
    if cid is not None:
        cid = validate_id(cid, "cid")
    if status not in OPERATOR_COMMIT_TARGETS:
        raise CommitNotAllowed(f"an operator may commit {', '.join(OPERATOR_COMMIT_TARGETS)}, not {status!r}")
    if status == Status.TODO:
        return repush(job_id, using=using, cid=cid, now=now, task=task)
    alias = _using(using)
    table = _table(task)
    now = now or db_now(alias)
    row = _current(alias, job_id, task, table)
    expected = row.cid if cid is None else cid
    if row.status not in OPERATOR_COMMIT_SOURCES and expected == row.cid:
        raise CommitNotAllowed(f"job {job_id} is {row.status!r}: an operator may commit {status!r} only from "
                               f"{', '.join(OPERATOR_COMMIT_SOURCES)}; repush it to run it again")
    token = new_token()
    statement = sql.operator_commit(sql.sql_for(alias, table.name), job_id, expected, status=status,
                                    sources=OPERATOR_COMMIT_SOURCES, token=token, now=now, note=note)
    closed = (_closed_attempts({job_id: row}, using=alias, now=now, table=table,
                               reason=f"committed {status!r} by an operator while it ran")
              if row.cid == expected else [])
    won = apply_one(alias, statement, job_id, expected, token, what=f"commit job {job_id} {status!r}",
                    also=_recorder(alias, closed, table), model=table.model)
    result = Transition(job_id, row.task, status, won.cid, None, row.priority)
    effects.after_transaction(alias, [result], now)
    return result


def operator_commit_many(job_ids: Sequence[int], status: str, *, using: str | None = None,
                         task: str | None = None) -> tuple[list[Transition], list[str]]:
    """Commit a selection one job at a time; returns what changed and a message per job that could not."""
    done: list[Transition] = []
    refused: list[str] = []
    for job_id in job_ids:
        try:
            done.append(operator_commit(job_id, status, using=using, task=task))
        except (CommitConflict, CommitNotAllowed) as exc:
            refused.append(str(exc))
    return done, refused


def commit(job_id: int, cid: int, status: str, *, using: str | None = None, task: str | None = None) -> Transition:
    """Meepo's ``Commit(id, cID, status)`` for a manual-mode job, with the cid its run was claimed at.

    Inside a job function prefer ``job.commit(status)``. A stale cid raises :class:`CommitConflict`.
    """
    alias = _using(using)
    job_id = validate_id(job_id)
    cid = validate_id(cid, "cid")
    status = validate_status(status)
    table = _table(task)
    row = _current(alias, job_id, task, table)
    declared = get_task(row.task)
    if declared.options.auto_commit:
        raise CommitNotAllowed(f"task {row.task!r} auto-commits (AUTO_COMMIT is True); commit is only for "
                               f"manual-mode tasks")
    if row.cid != cid or row.status != Status.DOING:
        raise CommitConflict(f"cannot commit job {job_id} {status!r} at cid {cid}: it is {row.status!r} at "
                             f"cid {row.cid}; nothing was written", job_id=job_id, expected_cid=cid,
                             actual_cid=row.cid, actual_status=row.status)
    now = db_now(alias)
    claimed = ClaimedJob(id=job_id, task=row.task, cid=cid, payload=b"", failed_times=row.failed_times,
                         attempts=row.attempts, priority=row.priority, started_at=row.started_at or now)
    return job_commit(row.task, claimed, status, declared.options, worker=row.worker, using=alias, now=now)


CANCEL_NOTE = "cancelled by an operator"


@dataclass(slots=True)
class CancelOutcome:
    """What :func:`cancel_many` did: the jobs it cancelled, and one message per job it left alone (finished
    already, or changed meanwhile)."""

    cancelled: list[Transition] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def _cancel_note(note: object) -> str:
    """The note a cancel writes as the job's last error: cleaned and cut to MAX_ERROR_BYTES (keeping its head);
    ValueError naming it when it is not text."""
    if not isinstance(note, str):
        raise ValueError(f"a cancel's note must be a string, not {note!r}")
    return result_text(note or CANCEL_NOTE, max_error_bytes())


def _not_cancellable(row: JobRow) -> str:
    return (f"job {row.id} is {row.status!r}: only a job in {', '.join(CANCEL_SOURCES)} can be cancelled (a "
            f"finished job is left as it is; repush it to run it again); nothing was written")


def cancel(job_id: int, *, cid: int | None = None, using: str | None = None, now: datetime | None = None,
           note: str = "", task: str | None = None) -> Transition:
    """Cancel one job: todo, doing or zombie → cancelled, cid + 1, at the current cid — or ``cid`` if given.

    A queued job never runs: its Redis entry carries the old cid, so its claim matches nothing. A running job is
    fenced: its later commit, lease renewal, snooze and progress are refused, and its function sees
    ``job.cancelled`` (and ``job.stopping``) at its next heartbeat. The run cut short is recorded as an Attempt
    ``cancelled`` in the same transaction; ``note`` (default "cancelled by an operator") becomes the job's last
    error. The task's ``on_finished`` hook is called once the commit is durable, as for any job that ended.

    Refused, with nothing written: an unknown id (:class:`JobNotFound`); a job already done, failed or cancelled
    (:class:`CommitNotAllowed`); a job no longer at ``cid`` (:class:`CommitConflict` naming its state). What if
    the answer is lost? The token settles it (``checked.apply_one``): the cancel and its Attempt row exist
    together or not at all, and a second copy matches nothing (the cid moved).
    """
    job_id = validate_id(job_id)
    if cid is not None:
        cid = validate_id(cid, "cid")
    note = _cancel_note(note)
    alias = _using(using)
    table = _table(task)
    row = _current(alias, job_id, task, table)
    expected = row.cid if cid is None else cid
    if row.status not in CANCEL_SOURCES and expected == row.cid:
        raise CommitNotAllowed(_not_cancellable(row))
    now = now or db_now(alias)
    token = new_token()
    statement = sql.cancel(sql.sql_for(alias, table.name), [(job_id, expected)], sources=CANCEL_SOURCES,
                           token=token, now=now, note=note)
    closed = (_closed_attempts({job_id: row}, using=alias, now=now, reason=note, table=table,
                               cut_short=Attempt.Outcome.CANCELLED) if row.cid == expected else [])
    won = apply_one(alias, statement, job_id, expected, token, what=f"cancel job {job_id}",
                    also=_recorder(alias, closed, table), model=table.model)
    result = Transition(job_id, row.task, Status.CANCELLED, won.cid, None, row.priority)
    effects.after_transaction(alias, [result], now, run_ended=metrics.CANCELLED)
    return result


def cancel_many(job_ids: Sequence[int], *, using: str | None = None, now: datetime | None = None,
                note: str = "", task: str | None = None) -> CancelOutcome:
    """Cancel many jobs at their current cids in one statement (see :func:`cancel`).

    Every id is checked first: a bad or unknown id raises (:class:`~django_meepo.exceptions.InvalidJob`,
    :class:`JobNotFound` naming them) and nothing is written. A job already finished, or one that changed
    between the read and the UPDATE, is left alone with a message in ``refused``; the others are cancelled.
    What if the answer is lost? As for :func:`cancel`: the rows carrying the statement's token are those it won
    (``checked.apply_many``), their Attempt rows were written with them, and a second copy matches nothing.
    """
    ids = sorted({validate_id(i) for i in job_ids})
    note = _cancel_note(note)
    alias = _using(using)
    table = _table(task)
    if not ids:
        return CancelOutcome()
    rows = _rows(alias, ids, task, table)
    missing = [i for i in ids if i not in rows]
    if missing:
        raise JobNotFound(f"no job with id {', '.join(map(str, missing[:20]))}{' …' if len(missing) > 20 else ''}"
                          f"; nothing was cancelled")
    outcome = CancelOutcome(refused=[_not_cancellable(r) for r in rows.values() if r.status not in CANCEL_SOURCES])
    eligible = {i: r for i, r in rows.items() if r.status in CANCEL_SOURCES}
    if not eligible:
        return outcome
    now = now or db_now(alias)
    token = new_token()
    statement = sql.cancel(sql.sql_for(alias, table.name), [(i, r.cid) for i, r in eligible.items()],
                           sources=CANCEL_SOURCES, token=token, now=now, note=note)
    closing = {a.job_id: a for a in _closed_attempts(eligible, using=alias, now=now, reason=note, table=table,
                                                     cut_short=Attempt.Outcome.CANCELLED)}

    def record(won: list[Won]) -> None:  # only the rows won: their UPDATE matched the cid they were read at
        table.attempt.objects.using(alias).bulk_create([closing[w.id] for w in won if w.id in closing])

    won = apply_many(alias, statement, {i: r.cid for i, r in eligible.items()}, token,
                     also=record if closing else None, model=table.model)
    outcome.cancelled = [Transition(w.id, eligible[w.id].task, Status.CANCELLED, w.cid, None, eligible[w.id].priority)
                         for w in won]
    won_ids = {w.id for w in won}
    outcome.refused += [f"job {i} changed meanwhile (it was {eligible[i].status!r} at cid {eligible[i].cid}); "
                        f"nothing was written" for i in eligible if i not in won_ids]
    effects.after_transaction(alias, outcome.cancelled, now, run_ended=metrics.CANCELLED)
    return outcome


__all__ = ["CANCEL_NOTE", "OPERATOR_COMMIT_SOURCES", "OPERATOR_COMMIT_TARGETS", "CancelOutcome", "cancel",
           "cancel_many", "commit", "operator_commit", "operator_commit_many", "repush", "repush_many"]
