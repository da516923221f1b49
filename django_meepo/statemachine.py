"""The job state machine: the only code that changes a job's ``status`` or ``cid``.

```
push ──► todo ──claim──► doing ──commit done──► done
          ▲  ▲             │  └─commit failed / n-th failure──► failed
          │  └─retry(backoff)┘ (failed_times+1)
          │                │ lease expired (sweeper): dst = todo | failed | done | zombie
          └──── repush (any status, cid+1) ◄── zombie / done / failed
```

Rules every function here keeps:

* Each change is one conditional ``UPDATE … WHERE id … AND status … AND (id, cid) IN (…)`` — or one such
  statement for a batch, each row conditioned on its own cid — whose result is checked.
* Every transition sets ``cid = cid + 1`` (so a stale or duplicated Redis entry, or a worker whose lease was
  taken over, is fenced off) and writes a fresh ``token``; the rows a statement changed are read back by that
  token, which tells a batch exactly which rows it won and tells :func:`db.run_checked` whether a statement
  whose connection died had committed.
* Times are computed in Python (``timezone.now()``) and passed as parameters, never ``NOW()``: the database
  session's time zone does not matter.
* Nothing here talks to Redis. Callers dispatch the refs a transition returns (``api.py``, the worker and the
  sweeper do).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .db import Sql, id_cid_condition, in_list, new_token, run_checked
from .exceptions import CommitConflict, CommitNotAllowed, InvalidJob, InvalidStatus, JobNotFound
from .models import Attempt, Job
from .options import TaskOptions
from .retry import backoff_seconds, is_final_failure
from .states import (  # value objects re-exported: callers speak of sm.Ref, sm.Transition, ...
    ALL_STATUSES,
    BatchOutcome,
    ClaimedJob,
    Dispatchable,
    Ref,
    Status,
    Transition,
)

log = logging.getLogger(__name__)

TABLE = Job._meta.db_table

__all__ = [
    "BatchOutcome", "ClaimedJob", "Dispatchable", "Ref", "Transition", "claim", "expire_leases", "extend_leases",
    "finish_done", "finish_failed", "job_commit", "operator_commit", "release", "repush", "repush_many",
    "validate_id", "validate_status",
]

# Who may do what (DESIGN §3). A job function in manual mode commits from `doing` with its claim's cid.
JOB_COMMIT_TARGETS = (Status.DONE, Status.FAILED, Status.TODO)
# An operator acts on the job's current cid; committing `todo` is a repush (allowed from any status).
OPERATOR_COMMIT_SOURCES = (Status.TODO, Status.DOING, Status.ZOMBIE)
OPERATOR_COMMIT_TARGETS = (Status.DONE, Status.FAILED, Status.TODO)


# --------------------------------------------------------------------------------------------- validation

def validate_status(status: object) -> str:
    if status not in ALL_STATUSES:
        raise InvalidStatus(f"{status!r} is not a job status (expected one of {', '.join(ALL_STATUSES)})")
    return str(status)


def validate_id(value: object, what: str = "job id") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        if isinstance(value, str) and value.isdigit() and int(value) > 0:
            return int(value)
        raise InvalidJob(f"{what} must be a positive integer, not {value!r}")
    return value


def _now(now: datetime | None) -> datetime:
    return now if now is not None else timezone.now()


def _sql(using: str) -> Sql:
    return Sql(using, TABLE)


def _read_by_token(using: str, ids: Sequence[int], token: str) -> list[tuple[int, int, str]]:
    return list(Job.objects.using(using).filter(id__in=list(ids), token=token)
                .values_list("id", "cid", "status"))


def _one(using: str, job_id: int, cid: int, statement: str, params: Sequence[object], token: str,
         result: Transition, what: str, *, also: Callable[[], object] | None = None,
         attempts: int = 8) -> Transition:
    """Run a one-row transition; anything but exactly one changed row is a CommitConflict naming the row's state.

    ``also`` writes more in the same transaction (an Attempt row). A lost answer is settled by the token.
    """
    def run() -> Transition:
        with transaction.atomic(using=using) if also else nullcontext():
            if _sql(using).execute(statement, params) != 1:
                raise _conflict(using, job_id, cid, what)
            if also:
                also()
        return result

    return run_checked(using, run, lambda: result if _read_by_token(using, [job_id], token) else None,
                       what=what, attempts=attempts)


Won = list[tuple[int, int, str]]


def _many(using: str, ids: Sequence[int], statement: str, params: Sequence[object], token: str,
          make: Callable[[Won], list[Transition]], what: str, *, also: Callable[[Won], object] | None = None,
          attempts: int = 8) -> list[Transition]:
    """Run a batch transition and read back by token exactly the rows it won (``also`` records them)."""
    def run() -> list[Transition]:
        with transaction.atomic(using=using) if also else nullcontext():
            _sql(using).execute(statement, params)
            won = _read_by_token(using, ids, token)
            if also and won:
                also(won)
        return make(won)

    def verify() -> list[Transition] | None:
        won = _read_by_token(using, ids, token)
        return make(won) if won else None

    return run_checked(using, run, verify, what=what, attempts=attempts)


# --------------------------------------------------------------------------------------------- claim

def claim(task: str, refs: Sequence[Ref], *, worker: str, lease_seconds: float, using: str,
          now: datetime | None = None, attempts: int = 30) -> list[ClaimedJob]:
    """todo → doing for every ref still at its cid and due; one UPDATE, won rows read back by token.

    A ref whose job moved on (a stale or duplicated Redis entry) simply is not won.
    """
    if not refs:
        return []
    now = _now(now)
    token = new_token()
    sql = _sql(using)
    cond, cond_params = id_cid_condition((r.id, r.cid) for r in refs)
    statement = (
        f"UPDATE {sql.table} SET status = %s, cid = cid + 1, attempts = attempts + 1, token = %s, worker = %s, "
        f"started_at = %s, finished_at = NULL, lease_until = %s, updated_at = %s "
        f"WHERE task = %s AND status = %s AND due_at <= %s AND {cond}"
    )
    params = [Status.DOING, token, worker[:200], sql.dt(now), sql.dt(now + timedelta(seconds=lease_seconds)),
              sql.dt(now), task, Status.TODO, sql.dt(now), *cond_params]
    ids = sorted({r.id for r in refs})

    def readback() -> list[ClaimedJob]:
        rows = (Job.objects.using(using).filter(id__in=ids, token=token, status=Status.DOING)
                .values_list("id", "cid", "payload", "failed_times", "attempts", "priority"))
        return [ClaimedJob(id=i, task=task, cid=c, payload=bytes(p or b""), failed_times=f, attempts=a,
                           priority=pr, started_at=now) for i, c, p, f, a, pr in rows]

    def run() -> list[ClaimedJob]:
        changed = sql.execute(statement, params)
        return readback() if changed else []

    return run_checked(using, run, lambda: readback() or None, what=f"claim of {len(refs)} {task} job(s)",
                       attempts=attempts)


# --------------------------------------------------------------------------------------------- finish (worker)

def finish_done(task: str, refs: Sequence[Ref], *, using: str, now: datetime | None = None,
                results: dict[int, str] | None = None, attempts: int = 30) -> BatchOutcome:
    """doing → done for a batch of claimed jobs (auto-commit); one UPDATE, each row fenced by its cid.

    ``results`` maps job id → a text result to store (the Tasks backend's return values).
    """
    if not refs:
        return BatchOutcome([], [])
    now = _now(now)
    token = new_token()
    sql = _sql(using)
    cond, cond_params = id_cid_condition((r.id, r.cid) for r in refs)
    result_sql, result_params = "", list[object]()
    if results:
        cases = " ".join(["WHEN %s THEN %s"] * len(results))
        result_sql = f", result = CASE id {cases} ELSE result END"
        for job_id, value in results.items():
            result_params.extend((job_id, value))
    statement = (f"UPDATE {sql.table} SET status = %s, cid = cid + 1, token = %s, finished_at = %s, "
                 f"lease_until = NULL, updated_at = %s{result_sql} WHERE status = %s AND {cond}")
    params = [Status.DONE, token, sql.dt(now), sql.dt(now), *result_params, Status.DOING, *cond_params]
    return _batch(using, task, refs, statement, params, token, f"commit done of {len(refs)} {task} job(s)",
                  attempts)


def _batch(using: str, task: str, refs: Sequence[Ref], statement: str, params: list[object], token: str,
           what: str, attempts: int) -> BatchOutcome:
    ids = [r.id for r in refs]

    def outcome() -> BatchOutcome:
        won_ids = {i: c for i, c, _ in _read_by_token(using, ids, token)}
        return BatchOutcome(won=[Ref(i, won_ids[i]) for i in ids if i in won_ids],
                            lost=[r for r in refs if r.id not in won_ids])

    def run() -> BatchOutcome:
        changed = _sql(using).execute(statement, params)
        if changed == len(set(ids)):
            return BatchOutcome(won=[Ref(r.id, r.cid + 1) for r in refs], lost=[])
        result = outcome()
        for ref in result.lost:
            log.warning("meepo: %s job %s: cid %s is stale (repushed, rescued or committed elsewhere); "
                        "its outcome was not recorded", task, ref.id, ref.cid,
                        extra={"job_id": ref.id, "task": task})
        return result

    return run_checked(using, run, lambda: outcome() if _read_by_token(using, ids, token) else None,
                       what=what, attempts=attempts)


def finish_failed(task: str, job: ClaimedJob, options: TaskOptions, *, error: str, error_class: str,
                  worker: str, using: str, outcome: str = Attempt.Outcome.FAILED,
                  now: datetime | None = None, attempts: int = 30) -> Transition:
    """doing → todo (retry after backoff) or failed (the n-th failure); records the attempt and its error."""
    now = _now(now)
    failed_times = job.failed_times + 1
    final = is_final_failure(failed_times, options)
    status = Status.FAILED if final else Status.TODO
    due = now + timedelta(seconds=backoff_seconds(failed_times, options)) if not final else None
    return _fail_one(task, job, status=status, due=due, failed_increment=1, error=error, error_class=error_class,
                     worker=worker, using=using, outcome=outcome, now=now, attempts=attempts)


def _fail_one(task: str, job: ClaimedJob, *, status: str, due: datetime | None, failed_increment: int,
              error: str, error_class: str, worker: str, using: str, outcome: str, now: datetime,
              attempts: int) -> Transition:
    token = new_token()
    sql = _sql(using)
    due_sql = ", due_at = %s" if due is not None else ""
    finished = now if status != Status.TODO else None
    statement = (f"UPDATE {sql.table} SET status = %s, cid = cid + 1, token = %s, "
                 f"failed_times = failed_times + %s, lease_until = NULL, finished_at = %s, updated_at = %s, "
                 f"last_error = %s{due_sql} WHERE id = %s AND cid = %s AND status = %s")
    params: list[object] = [status, token, failed_increment, sql.dt(finished), sql.dt(now), error[-60000:]]
    if due is not None:
        params.append(sql.dt(due))
    params += [job.id, job.cid, Status.DOING]
    result = Transition(job.id, task, status, job.cid + 1, due, job.priority)

    def record() -> None:
        Attempt.objects.using(using).create(
            job_id=job.id, number=job.attempts, worker=worker[:200], started_at=job.started_at,
            finished_at=now, outcome=outcome, error_class=error_class[:300], error=error[-60000:])

    return _one(using, job.id, job.cid, statement, params, token, result,
                f"record the failure of {task} job {job.id}", also=record, attempts=attempts)


def job_commit(task: str, job: ClaimedJob, status: str, options: TaskOptions, *, worker: str, using: str,
               now: datetime | None = None) -> Transition:
    """A job function's own commit (manual mode): doing → done | failed | todo, with its claim's cid.

    ``todo`` counts a failure and runs the job again at once — unless that failure is the task's
    ``MAX_FAILED_TIMES``-th, which ends it ``failed`` as any failure would; ``failed`` counts a failure and closes it.
    """
    status = validate_status(status)
    if options.auto_commit:
        raise CommitNotAllowed(f"task {task!r} auto-commits (AUTO_COMMIT is True): the worker commits job "
                               f"{job.id} when its function returns; set AUTO_COMMIT False to commit by hand")
    if status not in JOB_COMMIT_TARGETS:
        raise CommitNotAllowed(f"a job function may commit {', '.join(JOB_COMMIT_TARGETS)}, not {status!r}")
    now = _now(now)
    if status == Status.DONE:
        result = finish_done(task, [job.ref], using=using, now=now)
        if result.lost:
            raise _conflict(using, job.id, job.cid, f"commit done of {task} job {job.id}")
        return Transition(job.id, task, Status.DONE, job.cid + 1, None, job.priority)
    error = f"committed {status!r} by the job function"
    if status == Status.TODO and is_final_failure(job.failed_times + 1, options):
        status = Status.FAILED
        error += f"; that was its failure number {job.failed_times + 1} (MAX_FAILED_TIMES), so it failed"
    return _fail_one(task, job, status=status, due=now if status == Status.TODO else None, failed_increment=1,
                     error=error, error_class="", worker=worker, using=using, outcome=Attempt.Outcome.FAILED,
                     now=now, attempts=30)


def release(task: str, jobs: Sequence[ClaimedJob], *, worker: str, using: str, reason: str,
            now: datetime | None = None, attempts: int = 30) -> list[Transition]:
    """doing → todo, due now, without counting a failure: a worker hands back what it could not run."""
    if not jobs:
        return []
    now = _now(now)
    token = new_token()
    sql = _sql(using)
    cond, cond_params = id_cid_condition((j.id, j.cid) for j in jobs)
    statement = (f"UPDATE {sql.table} SET status = %s, cid = cid + 1, token = %s, lease_until = NULL, "
                 f"due_at = %s, updated_at = %s WHERE status = %s AND {cond}")
    params = [Status.TODO, token, sql.dt(now), sql.dt(now), Status.DOING, *cond_params]
    by_id = {j.id: j for j in jobs}

    def record(won: Won) -> None:
        Attempt.objects.using(using).bulk_create([
            Attempt(job_id=i, number=by_id[i].attempts, worker=worker[:200], started_at=by_id[i].started_at,
                    finished_at=now, outcome=Attempt.Outcome.RELEASED, error=reason) for i, _, _ in won])

    return _many(using, list(by_id), statement, params, token,
                 lambda won: [Transition(i, task, Status.TODO, c, now, by_id[i].priority) for i, c, _ in won],
                 f"hand-back of {len(jobs)} {task} job(s)", also=record, attempts=attempts)


def extend_leases(refs: Sequence[Ref], *, lease_seconds: float, using: str,
                  now: datetime | None = None) -> set[int]:
    """Renew the leases of running jobs; returns the ids whose lease was lost (their cid moved on)."""
    if not refs:
        return set()
    now = _now(now)
    sql = _sql(using)
    cond, cond_params = id_cid_condition((r.id, r.cid) for r in refs)
    statement = f"UPDATE {sql.table} SET lease_until = %s WHERE status = %s AND {cond}"
    params = [sql.dt(now + timedelta(seconds=lease_seconds)), Status.DOING, *cond_params]

    def lost() -> set[int]:
        held = set(Job.objects.using(using).filter(id__in=[r.id for r in refs], status=Status.DOING)
                   .values_list("id", "cid"))
        return {r.id for r in refs if (r.id, r.cid) not in held}

    def run() -> set[int]:
        # MySQL counts rows *changed*; a lease renewed twice in the same microsecond would look lost, so a
        # short count is confirmed by reading the rows.
        return set() if sql.execute(statement, params) == len({r.id for r in refs}) else lost()

    return run_checked(using, run, lost, what=f"lease renewal of {len(refs)} job(s)", attempts=3)


# --------------------------------------------------------------------------------------------- sweeper

@dataclass(slots=True)
class ExpiryOutcome:
    found: int
    changed: list[Transition]


def expire_leases(task: str, options: TaskOptions, *, using: str, now: datetime | None = None,
                  limit: int | None = None,
                  job_options: Callable[[bytes, TaskOptions], TaskOptions] | None = None) -> ExpiryOutcome:
    """Jobs of ``task`` whose lease expired go to the task's zombie destination (one query's worth).

    Each counts a failure and a rescue. With destination ``todo`` a job whose failure is its n-th goes to
    ``failed`` instead, so a poison job that keeps killing its worker ends. Every change is conditioned on
    the cid read and on the lease still being expired, so a job that finished meanwhile is left alone.
    ``job_options`` (a provider's, see registry.JobOptions) gives each job its own retry limit and backoff
    from its payload, which is then read too.
    """
    now = _now(now)
    limit = limit or options.sweep_limit
    fields = ["id", "cid", "failed_times", "attempts", "worker", "started_at", "priority"]
    found = list(Job.objects.using(using)
                 .filter(task=task, status=Status.DOING, lease_until__lt=now)
                 .order_by("lease_until")
                 .values_list(*fields, *(["payload"] if job_options else []))[:limit])
    groups: dict[tuple[str, int, float], list[tuple]] = defaultdict(list)
    backoffs: dict[tuple[str, int, float], TaskOptions] = {}
    for row in found:
        own = job_options(bytes(row[7]), options) if job_options else options
        failed_after = row[2] + 1
        dst = own.zombie_status
        if dst == Status.TODO and is_final_failure(failed_after, own):
            dst = Status.FAILED
        key = (dst, failed_after, own.retry_backoff) if dst == Status.TODO else (dst, 0, 0.0)
        groups[key].append(row[:7])
        backoffs[key] = own
    changed: list[Transition] = []
    for key, group in groups.items():
        dst, failed_after, _ = key
        delay = backoff_seconds(failed_after, backoffs[key]) if dst == Status.TODO else None
        due = now + timedelta(seconds=delay) if delay is not None else None
        changed += _expire_group(task, group, dst, due, using=using, now=now, options=options)
    return ExpiryOutcome(found=len(found), changed=changed)


def _expire_group(task: str, group: list[tuple], dst: str, due: datetime | None, *, using: str,
                  now: datetime, options: TaskOptions) -> list[Transition]:
    token = new_token()
    sql = _sql(using)
    cond, cond_params = id_cid_condition((r[0], r[1]) for r in group)
    finished = now if dst in (Status.DONE, Status.FAILED) else None
    error = (f"lease expired: no heartbeat for {options.lease_timeout:g} s (worker killed, hung or cut off); "
             f"moved to {dst!r} by the sweeper")
    statement = (f"UPDATE {sql.table} SET status = %s, cid = cid + 1, token = %s, failed_times = failed_times + 1, "
                 f"rescues = rescues + 1, lease_until = NULL, finished_at = %s, updated_at = %s, last_error = %s"
                 f"{', due_at = %s' if due else ''} WHERE status = %s AND lease_until < %s AND {cond}")
    params: list[object] = [dst, token, sql.dt(finished), sql.dt(now), error]
    if due:
        params.append(sql.dt(due))
    params += [Status.DOING, sql.dt(now), *cond_params]
    by_id = {r[0]: r for r in group}

    def record(won: Won) -> None:
        Attempt.objects.using(using).bulk_create([
            Attempt(job_id=i, number=by_id[i][3], worker=by_id[i][4], started_at=by_id[i][5],
                    finished_at=now, outcome=Attempt.Outcome.LEASE_EXPIRED, error=error) for i, _, _ in won])
        for i, _, _ in won:
            log.warning("meepo: %s job %s: lease expired (worker %s); now %s", task, i, by_id[i][4] or "?", dst,
                        extra={"job_id": i, "task": task})

    return _many(using, list(by_id), statement, params, token,
                 lambda won: [Transition(i, task, dst, c, due, by_id[i][6]) for i, c, _ in won],
                 f"lease expiry of {len(group)} {task} job(s)", also=record)


# --------------------------------------------------------------------------------------------- operators

def _conflict(using: str, job_id: int, cid: int, what: str) -> CommitConflict:
    row = Job.objects.using(using).filter(id=job_id).values_list("cid", "status").first()
    if row is None:
        return CommitConflict(f"cannot {what}: job {job_id} no longer exists", job_id=job_id, expected_cid=cid)
    return CommitConflict(
        f"cannot {what}: it is now {row[1]!r} at cid {row[0]}, not at cid {cid} (repushed, rescued or "
        f"committed elsewhere); nothing was written",
        job_id=job_id, expected_cid=cid, actual_cid=row[0], actual_status=row[1])


@dataclass(frozen=True, slots=True)
class _Row:
    """What an operator's change reads first: the cid to condition on, and the attempt it may close."""

    task: str
    cid: int
    status: str
    priority: int
    attempts: int
    worker: str
    started_at: datetime | None
    finished_at: datetime | None


_ROW_FIELDS = ("task", "cid", "status", "priority", "attempts", "worker", "started_at", "finished_at")


def _current(using: str, job_id: int) -> _Row:
    row = Job.objects.using(using).filter(id=job_id).values_list(*_ROW_FIELDS).first()
    if row is None:
        raise JobNotFound(f"no job with id {job_id}")
    return _Row(*row)


def _closed_attempts(rows: dict[int, _Row], *, using: str, now: datetime, reason: str) -> list[Attempt]:
    """The attempts an operator's change closes that no Attempt row records yet.

    Failures, expired leases and hand-backs are recorded when they happen; a run that ended ``done`` and a run
    still going (``doing``) are not. Without these rows a repush would erase that run's worker and times. Each
    is written in the transaction of the conditional UPDATE, which only wins at the cid these rows were read at.
    (A job an operator committed ``done`` while it ran is ``done`` with its run recorded already: not again.)
    """
    open_runs = {i: r for i, r in rows.items()
                 if r.attempts and r.started_at is not None and r.status in (Status.DONE, Status.DOING)}
    if not open_runs:
        return []
    recorded = set(Attempt.objects.using(using).filter(job_id__in=list(open_runs))
                   .values_list("job_id", "number"))
    return [Attempt(job_id=i, number=r.attempts, worker=r.worker[:200], started_at=r.started_at,
                    finished_at=(r.finished_at or now) if r.status == Status.DONE else now,
                    outcome=Attempt.Outcome.DONE if r.status == Status.DONE else Attempt.Outcome.SUPERSEDED,
                    error="" if r.status == Status.DONE else reason)
            for i, r in open_runs.items() if (i, r.attempts) not in recorded]


def _recorder(using: str, attempts: list[Attempt]) -> Callable[[], object] | None:
    return (lambda: Attempt.objects.using(using).bulk_create(attempts)) if attempts else None


def repush(job_id: int, *, using: str, cid: int | None = None, now: datetime | None = None,
           reset_failures: bool = True) -> Transition:
    """Force-repush from any status: → todo, due now, cid + 1 (fencing off every copy still running or queued).

    With ``cid`` the repush applies only at that cid (what an operator saw); without it, at the current cid.
    ``failed_times`` starts again from 0 unless ``reset_failures`` is False.
    """
    job_id = validate_id(job_id)
    if cid is not None:
        cid = validate_id(cid, "cid")
    now = _now(now)
    row = _current(using, job_id)
    expected = row.cid if cid is None else cid
    token = new_token()
    sql = _sql(using)
    reset = ", failed_times = 0" if reset_failures else ""
    statement = (f"UPDATE {sql.table} SET status = %s, cid = cid + 1, token = %s, due_at = %s, lease_until = NULL, "
                 f"finished_at = NULL, updated_at = %s{reset} WHERE id = %s AND cid = %s")
    params = [Status.TODO, token, sql.dt(now), sql.dt(now), job_id, expected]
    result = Transition(job_id, row.task, Status.TODO, expected + 1, now, row.priority)
    closed = (_closed_attempts({job_id: row}, using=using, now=now, reason="repushed by an operator")
              if row.cid == expected else [])
    return _one(using, job_id, expected, statement, params, token, result, f"repush job {job_id}",
                also=_recorder(using, closed))


def operator_commit(job_id: int, status: str, *, using: str, cid: int | None = None,
                    now: datetime | None = None, note: str = "") -> Transition:
    """An operator's commit (admin button, command): done or failed from todo, doing or zombie; todo = repush."""
    status = validate_status(status)
    job_id = validate_id(job_id)
    if cid is not None:
        cid = validate_id(cid, "cid")
    if status not in OPERATOR_COMMIT_TARGETS:
        raise CommitNotAllowed(f"an operator may commit {', '.join(OPERATOR_COMMIT_TARGETS)}, not {status!r}")
    if status == Status.TODO:
        return repush(job_id, using=using, cid=cid, now=now)
    now = _now(now)
    row = _current(using, job_id)
    expected = row.cid if cid is None else cid
    if row.status not in OPERATOR_COMMIT_SOURCES and expected == row.cid:
        raise CommitNotAllowed(f"job {job_id} is {row.status!r}: an operator may commit {status!r} only from "
                               f"{', '.join(OPERATOR_COMMIT_SOURCES)}; repush it to run it again")
    token = new_token()
    sql = _sql(using)
    error_sql = ", last_error = %s" if status == Status.FAILED else ""
    statement = (f"UPDATE {sql.table} SET status = %s, cid = cid + 1, token = %s, lease_until = NULL, "
                 f"finished_at = %s, updated_at = %s{error_sql} "
                 f"WHERE id = %s AND cid = %s AND status IN ({in_list(OPERATOR_COMMIT_SOURCES)})")
    params: list[object] = [status, token, sql.dt(now), sql.dt(now)]
    if status == Status.FAILED:
        params.append(note or "committed 'failed' by an operator")
    params += [job_id, expected, *OPERATOR_COMMIT_SOURCES]
    result = Transition(job_id, row.task, status, expected + 1, None, row.priority)
    closed = (_closed_attempts({job_id: row}, using=using, now=now,
                               reason=f"committed {status!r} by an operator while it ran")
              if row.cid == expected else [])
    return _one(using, job_id, expected, statement, params, token, result, f"commit job {job_id} {status!r}",
                also=_recorder(using, closed))


def repush_many(job_ids: Sequence[int], *, using: str, now: datetime | None = None,
                statuses: Sequence[str] | None = None) -> list[Transition]:
    """Repush many jobs at their current cids in one statement; returns those repushed (others raced)."""
    ids = sorted({validate_id(i) for i in job_ids})
    if not ids:
        return []
    now = _now(now)
    qs = Job.objects.using(using).filter(id__in=ids)
    if statuses is not None:
        qs = qs.filter(status__in=[validate_status(s) for s in statuses])
    current = {i: _Row(*rest) for i, *rest in qs.values_list("id", *_ROW_FIELDS)}
    if not current:
        return []
    token = new_token()
    sql = _sql(using)
    cond, cond_params = id_cid_condition((i, r.cid) for i, r in current.items())
    statement = (f"UPDATE {sql.table} SET status = %s, cid = cid + 1, token = %s, due_at = %s, lease_until = NULL, "
                 f"finished_at = NULL, updated_at = %s, failed_times = 0 WHERE {cond}")
    params = [Status.TODO, token, sql.dt(now), sql.dt(now), *cond_params]
    closing = {a.job_id: a for a in _closed_attempts(current, using=using, now=now,
                                                     reason="repushed by an operator")}

    def record(won: Won) -> None:  # only the rows won: their UPDATE matched the cid they were read at
        Attempt.objects.using(using).bulk_create([closing[i] for i, _, _ in won if i in closing])

    return _many(using, list(current), statement, params, token,
                 lambda won: [Transition(i, current[i].task, Status.TODO, c, now, current[i].priority)
                              for i, c, _ in won],
                 f"repush of {len(current)} job(s)", also=record if closing else None)
