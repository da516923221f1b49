"""The job state machine: the only code that changes a job's ``status`` or ``cid`` — each transition whole.

```
push ──► todo ──claim──► doing ──commit done──► done
          ▲  ▲             │  └─commit failed / n-th failure──► failed
          │  └─retry(backoff)┘ (failed_times+1)
          │  └─snooze(s)─────┘ (due in s seconds; failed_times unchanged)
          │                │ lease expired (sweeper): dst = todo | failed | done | zombie
          └──── repush (any status, cid+1) ◄── zombie / done / failed / cancelled
todo | doing | zombie ──cancel (operator, cid+1)──► cancelled
```

A transition is one verb here (the workers' and the sweeper's; ``operators.py`` has the operators': repush,
commit and cancel) that does all of it:

1. its conditional statement, by name from ``sql.py``, applied through :func:`checked.apply` (which reads back
   by token what it won, on every short count, and settles lost answers by the statement's effect);
2. the attempt rows it writes, in the same transaction;
3. its side effects once the commit is durable (``effects.after_transaction``): the jobs it made due go to the
   process's outbox, the jobs it ended to their task's ``on_finished`` hook.

Callers — the worker, the sweeper, the admin, commands, the Tasks backend — call one verb and cannot forget a
side effect. Times default to the database's clock (``clock.db_now``), so leases and due times written by one
host are compared on the same clock by every other.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import effects, metrics, sql, tables
from .checked import Won, apply, apply_many, apply_one, conflict
from .clock import db_now
from .db import new_token
from .exceptions import CommitNotAllowed
from .models import Attempt
from .options import TaskOptions
from .progress import Progress
from .retry import backoff_seconds, is_final_failure
from .states import (  # value objects re-exported: callers speak of sm.Ref, sm.Transition, ...
    BatchOutcome,
    ClaimedJob,
    Dispatchable,
    Ref,
    Status,
    Transition,
    validate_id,
    validate_status,
)
from .text import error_text

log = logging.getLogger(__name__)

# A batch of done commits is split so that no statement carries more result text than this (max_allowed_packet).
RESULT_BYTES_PER_STATEMENT = 4 * 1024 * 1024

__all__ = [
    "BatchOutcome", "ClaimedJob", "Dispatchable", "Ref", "Transition", "claim", "expire_leases", "extend_leases",
    "finish_done", "finish_failed", "job_commit", "release", "snooze", "validate_id", "validate_snooze",
    "validate_status", "write_progress",
]

# A job function in manual mode commits from `doing` with its claim's cid (DESIGN §3).
JOB_COMMIT_TARGETS = (Status.DONE, Status.FAILED, Status.TODO)


def _now(now: datetime | None, using: str) -> datetime:
    return now if now is not None else db_now(using)


# --------------------------------------------------------------------------------------------- claim

def claim(task: str, refs: Sequence[Ref], *, worker: str, lease_seconds: float, using: str,
          now: datetime | None = None, tries: int = 30) -> list[ClaimedJob]:
    """todo → doing for every ref still at its cid and due; one UPDATE, the rows won read back by token.

    A ref whose job moved on (a stale or duplicated Redis entry) simply is not won. The read back runs on every
    call, so a claim whose first copy committed while its answer was lost still returns the jobs it owns.
    """
    if not refs:
        return []
    table = tables.for_task(task)
    now = _now(now, using)
    token = new_token()
    statement = sql.claim(sql.sql_for(using, table.name), task, ((r.id, r.cid) for r in refs), token=token,
                          worker=worker, now=now, due_by=now, lease_until=now + timedelta(seconds=lease_seconds))
    ids = sorted({r.id for r in refs})

    def read() -> list[ClaimedJob]:
        rows = (table.model.objects.using(using).filter(id__in=ids, token=token, status=Status.DOING)
                .values_list("id", "cid", "payload", "failed_times", "attempts", "priority", "due_at",
                             "trace_context"))
        return [ClaimedJob(id=i, task=task, cid=c, payload=bytes(p or b""), failed_times=f, attempts=a,
                           priority=pr, started_at=now, due_at=due, trace_context=trace)
                for i, c, p, f, a, pr, due, trace in rows]

    won = apply(using, statement, {r.id: r.cid for r in refs}, read=read, tries=tries)
    if metrics.ENABLED:
        metrics.claimed(using, task, won, now)
    return won


# --------------------------------------------------------------------------------------------- finish (worker)

def finish_done(task: str, refs: Sequence[Ref], *, using: str, now: datetime | None = None,
                results: dict[int, str] | None = None, tries: int = 30) -> BatchOutcome:
    """doing → done for a batch of claimed jobs (auto-commit), each row fenced by its cid; ``on_finished`` follows.

    ``results`` maps job id → a text result to store (the Tasks backend's return values); a batch whose results
    are large is written in several statements, none over :data:`RESULT_BYTES_PER_STATEMENT`.
    """
    if not refs:
        return BatchOutcome([], [])
    table = tables.for_task(task)
    now = _now(now, using)
    won: list[Won] = []
    for chunk in _result_chunks(refs, results or {}):
        token = new_token()
        chunk_results = {r.id: results[r.id] for r in chunk if results and r.id in results}
        statement = sql.finish_done(sql.sql_for(using, table.name), ((r.id, r.cid) for r in chunk), token=token,
                                    now=now, results=chunk_results or None)
        chunk_won = apply_many(using, statement, {r.id: r.cid for r in chunk}, token, tries=tries,
                               model=table.model)
        # announced chunk by chunk: a later chunk that raises must not silence what an earlier one ended
        effects.after_transaction(using, [Transition(w.id, task, Status.DONE, w.cid, None) for w in chunk_won], now,
                                  run_ended=metrics.DONE)
        won += chunk_won
    by_id = {w.id: w for w in won}
    outcome = BatchOutcome(won=[Ref(r.id, by_id[r.id].cid) for r in refs if r.id in by_id],
                           lost=[r for r in refs if r.id not in by_id])
    for ref in outcome.lost:
        log.warning("meepo: %s job %s: cid %s is stale (repushed, rescued, cancelled or committed elsewhere); its "
                    "outcome was not recorded", task, ref.id, ref.cid, extra={"job_id": ref.id, "task": task})
    return outcome


def _result_chunks(refs: Sequence[Ref], results: dict[int, str]) -> list[list[Ref]]:
    chunks: list[list[Ref]] = [[]]
    size = 0
    for ref in refs:
        length = len(results.get(ref.id, "")) * 4  # UTF-8 bytes at most
        if chunks[-1] and size + length > RESULT_BYTES_PER_STATEMENT:
            chunks.append([])
            size = 0
        chunks[-1].append(ref)
        size += length
    return chunks


def finish_failed(task: str, job: ClaimedJob, options: TaskOptions, *, error: str, error_class: str,
                  worker: str, using: str, outcome: str = Attempt.Outcome.FAILED,
                  now: datetime | None = None, tries: int = 30) -> Transition:
    """doing → todo (retry after backoff) or failed (the n-th failure); records the attempt and its error."""
    now = _now(now, using)
    failed_times = job.failed_times + 1
    final = is_final_failure(failed_times, options)
    due = None if final else now + timedelta(seconds=backoff_seconds(failed_times, options))
    return _fail(task, job, status=Status.FAILED if final else Status.TODO, due=due, error=error,
                 error_class=error_class, worker=worker, using=using, outcome=outcome, now=now, tries=tries)


def _fail(task: str, job: ClaimedJob, *, status: str, due: datetime | None, error: str, error_class: str,
          worker: str, using: str, outcome: str, now: datetime, tries: int) -> Transition:
    table = tables.for_task(task)
    token = new_token()
    error = error_text(error)  # already so for a run's outcome (execution.py); a commit's own note is short
    statement = sql.finish_failed(sql.sql_for(using, table.name), job.id, job.cid, status=status, token=token,
                                  now=now, error=error, due=due)

    def record() -> None:
        table.attempt_row(
            job_id=job.id, number=job.attempts, worker=worker[:200], started_at=job.started_at,
            finished_at=now, outcome=outcome, error_class=error_class[:300], error=error).save(using=using,
                                                                                               force_insert=True)

    won = apply_one(using, statement, job.id, job.cid, token, what=f"record the failure of {task} job {job.id}",
                    also=record, tries=tries, model=table.model)
    result = Transition(job.id, task, status, won.cid, due, job.priority)
    effects.after_transaction(using, [result], now, run_ended=metrics.FAILURE)
    return result


def job_commit(task: str, job: ClaimedJob, status: str, options: TaskOptions, *, worker: str, using: str,
               now: datetime | None = None) -> Transition:
    """A job function's own commit (manual mode): doing → done | failed | todo, with its claim's cid.

    ``todo`` counts a failure and runs the job again at once — unless that failure is the task's
    ``MAX_FAILED_TIMES``-th, which ends it ``failed`` as any failure would; ``failed`` counts a failure and closes
    it. Its side effects follow as for any transition: a ``todo`` is dispatched, an end announced.
    """
    status = validate_status(status)
    if options.auto_commit:
        raise CommitNotAllowed(f"task {task!r} auto-commits (AUTO_COMMIT is True): the worker commits job "
                               f"{job.id} when its function returns; set AUTO_COMMIT False to commit by hand")
    if status not in JOB_COMMIT_TARGETS:
        raise CommitNotAllowed(f"a job function may commit {', '.join(JOB_COMMIT_TARGETS)}, not {status!r}")
    now = _now(now, using)
    if status == Status.DONE:
        result = finish_done(task, [job.ref], using=using, now=now)
        if result.lost:
            raise conflict(using, job.id, job.cid, f"commit done of {task} job {job.id}",
                           model=tables.for_task(task).model)
        return Transition(job.id, task, Status.DONE, result.won[0].cid, None, job.priority)
    error = f"committed {status!r} by the job function"
    if status == Status.TODO and is_final_failure(job.failed_times + 1, options):
        status = Status.FAILED
        error += f"; that was its failure number {job.failed_times + 1} (MAX_FAILED_TIMES), so it failed"
    return _fail(task, job, status=status, due=now if status == Status.TODO else None, error=error,
                 error_class="", worker=worker, using=using, outcome=Attempt.Outcome.FAILED, now=now, tries=30)


def release(task: str, jobs: Sequence[ClaimedJob], *, worker: str, using: str, reason: str,
            now: datetime | None = None, tries: int = 30) -> list[Transition]:
    """doing → todo, due now, without counting a failure: a worker hands back what it could not run."""
    if not jobs:
        return []
    table = tables.for_task(task)
    now = _now(now, using)
    token = new_token()
    by_id = {j.id: j for j in jobs}
    statement = sql.release(sql.sql_for(using, table.name), ((j.id, j.cid) for j in jobs), token=token, now=now)

    def record(won: list[Won]) -> None:
        table.attempt.objects.using(using).bulk_create([
            table.attempt_row(job_id=w.id, number=by_id[w.id].attempts, worker=worker[:200],
                    started_at=by_id[w.id].started_at, finished_at=now, outcome=Attempt.Outcome.RELEASED,
                    error=reason) for w in won])

    won = apply_many(using, statement, {j.id: j.cid for j in jobs}, token, also=record, tries=tries,
                     model=table.model)
    changed = [Transition(w.id, task, Status.TODO, w.cid, now, by_id[w.id].priority) for w in won]
    effects.after_transaction(using, changed, now, run_ended=metrics.RELEASED)
    return changed


def validate_snooze(seconds: object) -> float:
    """``seconds`` as a float, or ValueError naming it: a finite number >= 0 (bool is not a number here)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds) \
            or seconds < 0:
        raise ValueError(f"snooze takes a finite number of seconds >= 0, not {seconds!r}")
    return float(seconds)


def snooze(task: str, job: ClaimedJob, seconds: float, *, worker: str, using: str,
           now: datetime | None = None) -> Transition:
    """doing → todo, due ``seconds`` from now, at the claim's cid: a job function puts its own run off.

    No failure is counted (``failed_times`` and ``last_error`` unchanged) and the run is recorded as an Attempt
    with outcome ``snoozed``. ``attempts`` is not given back: it counts claimed runs, and this was one (the retry
    budget is ``failed_times``, which a snooze leaves alone). A job due later is dispatched by the sweeper once
    due, as a retry after backoff is; ``snooze(0)`` is dispatched at once.

    Bad ``seconds`` raise ValueError before anything is written. A stale run (the lease lost: rescued, repushed,
    committed or snoozed already) raises CommitConflict naming the job's state; nothing is written. What if the
    answer is lost? The token settles it (``checked.apply_one``): the snooze and its Attempt row exist together
    or not at all, and a second copy matches nothing.
    """
    delay = validate_snooze(seconds)
    now = _now(now, using)
    try:
        due = now + timedelta(seconds=delay)
    except OverflowError:
        raise ValueError(f"snooze takes a number of seconds that keeps the due time a date, not {seconds!r}") \
            from None
    table = tables.for_task(task)
    token = new_token()
    statement = sql.snooze(sql.sql_for(using, table.name), job.id, job.cid, token=token, now=now, due=due)

    def record() -> None:
        table.attempt_row(
            job_id=job.id, number=job.attempts, worker=worker[:200], started_at=job.started_at, finished_at=now,
            outcome=Attempt.Outcome.SNOOZED, error=f"snoozed for {delay:g} s by the job function",
        ).save(using=using, force_insert=True)

    won = apply_one(using, statement, job.id, job.cid, token, what=f"snooze {task} job {job.id}", also=record,
                    model=table.model)
    result = Transition(job.id, task, Status.TODO, won.cid, due, job.priority)
    effects.after_transaction(using, [result], now, run_ended=metrics.SNOOZED)
    return result


def write_progress(ref: Ref, progress: Progress, *, using: str, now: datetime | None = None,
                   task: str | None = None) -> bool:
    """Store a running job's progress on its row while it is ``doing`` at ``ref.cid``; False when the job moved
    on (a stale run writes nothing). Not a transition: no cid, token or status changes. ``task`` names the
    job's table (default: the shared one).

    What if the answer is lost? The effect decides (the row at that cid holds these values); the statement runs
    again only when it is absent, and running it twice writes the same values."""
    table = tables.for_task(task) if task else tables.default()
    now = _now(now, using)
    statement = sql.progress(sql.sql_for(using, table.name), ref.id, ref.cid, done=progress.done, total=progress.total,
                             note=progress.note, now=now)

    def read() -> list[int]:
        return list(table.model.objects.using(using).filter(
            id=ref.id, cid=ref.cid, status=Status.DOING, progress_done=progress.done,
            progress_total=progress.total, progress_note=progress.note).values_list("id", flat=True))

    return bool(apply(using, statement, {ref.id: ref.cid}, read=read, full=lambda: [ref.id], tries=3))


def extend_leases(refs: Sequence[Ref], *, lease_seconds: float, using: str,
                  now: datetime | None = None, task: str | None = None) -> set[int]:
    """Renew the leases of running jobs (of ``task``'s table; default the shared one); returns the ids whose
    lease was lost (their cid moved on).

    The check proves the effect the statement was for: a lease counts as renewed only when its row is still
    ``doing`` at the claim's cid *and* its ``lease_until`` reached the new time. So a renewal whose connection
    died before the statement arrived is run again, never reported as renewed; and a renewal that raced another
    renewal of the same job (the job's own heartbeat) is not mistaken for a lost lease.
    """
    if not refs:
        return set()
    model = (tables.for_task(task) if task else tables.default()).model
    now = _now(now, using)
    until = now + timedelta(seconds=lease_seconds)
    targets = {r.id: r.cid for r in refs}
    statement = sql.renew(sql.sql_for(using, model._meta.db_table), targets.items(), lease_until=until,
                          lease_seconds=lease_seconds)

    def read() -> list[int]:
        held = (model.objects.using(using).filter(id__in=list(targets), status=Status.DOING, lease_until__gte=until)
                .values_list("id", "cid"))
        return [i for i, c in held if targets.get(i) == c]

    def settle() -> list[int] | None:
        """After a lost answer: a lease still ours that did not reach ``until`` says the statement never ran
        (it renews every lease still ours, or none), so it runs again — even when other leases of the batch
        reached ``until`` through another thread's renewal; else the leases still ours were renewed."""
        rows = (model.objects.using(using).filter(id__in=list(targets), status=Status.DOING)
                .values_list("id", "cid", "lease_until"))
        ours = [(i, lease) for i, c, lease in rows if targets.get(i) == c]
        if any(lease is None or lease < until for _, lease in ours):
            return None
        return [i for i, _ in ours]

    renewed = apply(using, statement, targets, read=read, full=lambda: list(targets), settle=settle, tries=3)
    return set(targets) - set(renewed)


# --------------------------------------------------------------------------------------------- sweeper

@dataclass(slots=True)
class ExpiryOutcome:
    found: int
    changed: list[Transition]


@dataclass(frozen=True, slots=True)
class _Expired:
    id: int
    cid: int
    failed_times: int
    attempts: int
    worker: str
    started_at: datetime | None
    priority: int
    payload: bytes


def expire_leases(task: str, options: TaskOptions, *, using: str, now: datetime | None = None,
                  limit: int | None = None,
                  job_options: Callable[[bytes, TaskOptions], TaskOptions] | None = None) -> ExpiryOutcome:
    """Jobs of ``task`` whose lease expired go to the task's zombie destination (one query's worth).

    Each counts a failure and a rescue. With destination ``todo`` a job whose failure is its n-th goes to
    ``failed`` instead, so a poison job that keeps killing its worker ends. Every change is conditioned on the
    cid read and on the lease still being expired, so a job that finished or renewed meanwhile is left alone.
    ``job_options`` (a provider's, see registry.JobOptions) gives each job its own retry limit and backoff from
    its payload, which is then read too.
    """
    now = _now(now, using)
    limit = limit or options.sweep_limit
    fields = ["id", "cid", "failed_times", "attempts", "worker", "started_at", "priority"]
    rows = (tables.for_task(task).model.objects.using(using).filter(task=task, status=Status.DOING, lease_until__lt=now)
            .order_by("lease_until").values_list(*fields, *(["payload"] if job_options else []))[:limit])
    found = [_Expired(id=row[0], cid=row[1], failed_times=row[2], attempts=row[3], worker=row[4], started_at=row[5],
                      priority=row[6], payload=bytes(row[7]) if job_options else b"") for row in rows]
    groups: dict[tuple[str, int, float], list[_Expired]] = defaultdict(list)
    policies: dict[tuple[str, int, float], TaskOptions] = {}
    for row in found:
        own = job_options(row.payload, options) if job_options else options
        dst = own.zombie_status
        if dst == Status.TODO and is_final_failure(row.failed_times + 1, own):
            dst = Status.FAILED
        key = (dst, row.failed_times + 1, own.retry_backoff) if dst == Status.TODO else (dst, 0, 0.0)
        groups[key].append(row)
        policies[key] = own
    changed: list[Transition] = []
    for (dst, failed_after, _), group in groups.items():
        delay = backoff_seconds(failed_after, policies[(dst, failed_after, _)]) if dst == Status.TODO else None
        due = now + timedelta(seconds=delay) if delay is not None else None
        changed += _expire_group(task, group, dst, due, using=using, now=now, options=options)
    effects.after_transaction(using, changed, now, run_ended=metrics.RESCUED)
    return ExpiryOutcome(found=len(found), changed=changed)


def _expire_group(task: str, group: list[_Expired], dst: str, due: datetime | None, *, using: str,
                  now: datetime, options: TaskOptions) -> list[Transition]:
    table = tables.for_task(task)
    token = new_token()
    error = (f"lease expired: no heartbeat for {options.lease_timeout:g} s (worker killed, hung or cut off); "
             f"moved to {dst!r} by the sweeper")
    statement = sql.expire(sql.sql_for(using, table.name), ((r.id, r.cid) for r in group), dst=dst, token=token,
                           now=now, error=error, due=due)
    by_id = {r.id: r for r in group}

    def record(won: list[Won]) -> None:
        table.attempt.objects.using(using).bulk_create([
            table.attempt_row(job_id=w.id, number=by_id[w.id].attempts, worker=by_id[w.id].worker,
                    started_at=by_id[w.id].started_at, finished_at=now, outcome=Attempt.Outcome.LEASE_EXPIRED,
                    error=error) for w in won])
        for w in won:
            log.warning("meepo: %s job %s: lease expired (worker %s); now %s", task, w.id,
                        by_id[w.id].worker or "?", dst, extra={"job_id": w.id, "task": task})

    won = apply_many(using, statement, {r.id: r.cid for r in group}, token, also=record, model=table.model)
    return [Transition(w.id, task, dst, w.cid, due, by_id[w.id].priority) for w in won]
