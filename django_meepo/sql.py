"""Every statement that changes a job's ``status``, ``cid`` or lease, by name, in one place.

A reader finds "what can change a job" here (as in River's ``river_job.sql`` or Procrastinate's ``queries.sql``).
Each builder returns a :class:`Statement`: its name (for logs and errors), its SQL and its parameters. The state
machine (``statemachine.py``, ``operators.py``) is the only caller; it runs them through
:func:`django_meepo.checked.apply`, which checks each one's effect.

Rules every statement keeps (DESIGN §3):

* it is conditional: ``WHERE id … AND status … AND (id, cid) IN (…)`` — each row conditioned on its own cid (or,
  for an operator, on the cid the operator saw), so a stale copy never overwrites a newer state;
* a transition sets ``cid = cid + 1`` and writes a fresh ``token``: the rows a statement changed are read back by
  that token, which tells a batch exactly which rows it won, and tells a retry after a lost answer whether the
  first copy committed;
* times are parameters computed from the database's clock (``clock.db_now``), never ``NOW()`` — so the session's
  time zone does not matter, and every process compares times on one clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .db import Sql, id_cid_condition, in_list, job_table
from .states import Status


@dataclass(frozen=True, slots=True)
class Statement:
    name: str
    sql: str
    params: list[Any]


def sql_for(using: str, table: str | None = None) -> Sql:
    """Quoting and value adaptation for the job table ``table`` (a task's, ``tables.for_task(task).name``; the
    shared ``meepo_job`` by default) on ``using``."""
    return Sql(using, table or job_table())


# --------------------------------------------------------------------------------------------- worker side

def claim(q: Sql, task: str, refs: Iterable[tuple[int, int]], *, token: str, worker: str, now: datetime,
          due_by: datetime, lease_until: datetime) -> Statement:
    """todo → doing for each (id, cid) still at that cid and due by ``due_by``: ``attempts + 1``, a lease, this
    worker's name."""
    cond, params = id_cid_condition(refs)
    return Statement("claim", (
        f"UPDATE {q.table} SET status = %s, cid = cid + 1, attempts = attempts + 1, token = %s, worker = %s, "
        f"started_at = %s, finished_at = NULL, lease_until = %s, updated_at = %s "
        f"WHERE task = %s AND status = %s AND due_at <= %s AND {cond}"),
        [Status.DOING, token, worker[:200], q.dt(now), q.dt(lease_until), q.dt(now), task, Status.TODO,
         q.dt(due_by), *params])


def finish_done(q: Sql, refs: Iterable[tuple[int, int]], *, token: str, now: datetime,
                results: dict[int, str] | None) -> Statement:
    """doing → done for each (id, cid) of a batch; ``results`` (id → text) are stored in the same statement."""
    cond, params = id_cid_condition(refs)
    result_sql, result_params = "", list[Any]()
    if results:
        result_sql = f", result = CASE id {' '.join(['WHEN %s THEN %s'] * len(results))} ELSE result END"
        for job_id, value in results.items():
            result_params.extend((job_id, value))
    return Statement("finish_done", (
        f"UPDATE {q.table} SET status = %s, cid = cid + 1, token = %s, finished_at = %s, lease_until = NULL, "
        f"updated_at = %s{result_sql} WHERE status = %s AND {cond}"),
        [Status.DONE, token, q.dt(now), q.dt(now), *result_params, Status.DOING, *params])


def finish_failed(q: Sql, job_id: int, cid: int, *, status: str, token: str, now: datetime, error: str,
                  due: datetime | None) -> Statement:
    """doing → todo (a retry, due at ``due``) or failed: ``failed_times + 1`` and the error, at the claim's cid."""
    due_sql = ", due_at = %s" if due is not None else ""
    finished = now if status != Status.TODO else None
    params: list[Any] = [status, token, q.dt(finished), q.dt(now), error]
    if due is not None:
        params.append(q.dt(due))
    return Statement("finish_failed", (
        f"UPDATE {q.table} SET status = %s, cid = cid + 1, token = %s, failed_times = failed_times + 1, "
        f"lease_until = NULL, finished_at = %s, updated_at = %s, last_error = %s{due_sql} "
        f"WHERE id = %s AND cid = %s AND status = %s"),
        [*params, job_id, cid, Status.DOING])


def release(q: Sql, refs: Iterable[tuple[int, int]], *, token: str, now: datetime) -> Statement:
    """doing → todo, due now, no failure counted: a worker hands back jobs it could not run."""
    cond, params = id_cid_condition(refs)
    return Statement("release", (
        f"UPDATE {q.table} SET status = %s, cid = cid + 1, token = %s, lease_until = NULL, due_at = %s, "
        f"updated_at = %s WHERE status = %s AND {cond}"),
        [Status.TODO, token, q.dt(now), q.dt(now), Status.DOING, *params])


def snooze(q: Sql, job_id: int, cid: int, *, token: str, now: datetime, due: datetime) -> Statement:
    """doing → todo, due at ``due``, at the claim's cid: no failure counted (``failed_times`` unchanged), no
    error written; a job function puts its own run off (``job.snooze``)."""
    return Statement("snooze", (
        f"UPDATE {q.table} SET status = %s, cid = cid + 1, token = %s, lease_until = NULL, due_at = %s, "
        f"updated_at = %s WHERE id = %s AND cid = %s AND status = %s"),
        [Status.TODO, token, q.dt(due), q.dt(now), job_id, cid, Status.DOING])


def progress(q: Sql, job_id: int, cid: int, *, done: int, total: int, note: str, now: datetime) -> Statement:
    """A running job's progress, written while it is still ``doing`` at its claim's cid (a stale run writes
    nothing); not a transition: neither ``cid`` nor ``token`` changes, as for a lease renewal."""
    return Statement("progress", (
        f"UPDATE {q.table} SET progress_done = %s, progress_total = %s, progress_note = %s, progress_at = %s "
        f"WHERE id = %s AND cid = %s AND status = %s"),
        [done, total, note, q.dt(now), job_id, cid, Status.DOING])


def renew(q: Sql, refs: Iterable[tuple[int, int]], *, lease_until: datetime, lease_seconds: float) -> Statement:
    """Move the leases of running jobs (still ``doing`` at their claim's cid) to at least ``lease_until``; not a
    transition.

    A lease does not move back: renewals of one job come from several threads (the monitor, the proof of a waiting
    job, the job's own heartbeat), each with its own reading of the clock, and may land out of order. Were the
    later-landing one to set an earlier time, the other's check (``lease_until`` reached its time) would find its
    effect gone and report a live lease as lost. A lease more than ``lease_seconds`` beyond ``lease_until`` is
    not kept, though: no renewal wrote it at this clock (the clock stepped back — an NTP step, a daylight-saving
    fall-back with ``USE_TZ = False``), and keeping it would leave a dead worker's job ``doing`` that much longer.
    """
    cond, params = id_cid_condition(refs)
    until, most = q.dt(lease_until), q.dt(lease_until + timedelta(seconds=lease_seconds))
    return Statement("renew", (
        f"UPDATE {q.table} SET lease_until = CASE WHEN lease_until >= %s AND lease_until <= %s THEN lease_until "
        f"ELSE %s END WHERE status = %s AND {cond}"),
        [until, most, until, Status.DOING, *params])


# --------------------------------------------------------------------------------------------- sweeper side

def expire(q: Sql, refs: Iterable[tuple[int, int]], *, dst: str, token: str, now: datetime, error: str,
           due: datetime | None) -> Statement:
    """doing → ``dst`` for jobs whose lease is still expired at their cid: a failure and a rescue each."""
    cond, params = id_cid_condition(refs)
    finished = now if dst in (Status.DONE, Status.FAILED) else None
    head: list[Any] = [dst, token, q.dt(finished), q.dt(now), error]
    if due is not None:
        head.append(q.dt(due))
    return Statement("expire", (
        f"UPDATE {q.table} SET status = %s, cid = cid + 1, token = %s, failed_times = failed_times + 1, "
        f"rescues = rescues + 1, lease_until = NULL, finished_at = %s, updated_at = %s, last_error = %s"
        f"{', due_at = %s' if due is not None else ''} WHERE status = %s AND lease_until < %s AND {cond}"),
        [*head, Status.DOING, q.dt(now), *params])


# --------------------------------------------------------------------------------------------- operators

def repush(q: Sql, refs: Iterable[tuple[int, int]], *, token: str, now: datetime, running_due: datetime,
           reset_failures: bool) -> Statement:
    """Any status → todo at the cid the operator saw (fencing off every copy still running or queued): due now,
    or at ``running_due`` for a job that was ``doing`` (states.REPUSH_RUNNING_DELAY says why)."""
    cond, params = id_cid_condition(refs)
    reset = ", failed_times = 0" if reset_failures else ""
    return Statement("repush", (
        f"UPDATE {q.table} SET due_at = CASE WHEN status = %s THEN %s ELSE %s END, status = %s, cid = cid + 1, "
        f"token = %s, lease_until = NULL, finished_at = NULL, updated_at = %s{reset} WHERE {cond}"),
        [Status.DOING, q.dt(running_due), q.dt(now), Status.TODO, token, q.dt(now), *params])


def operator_commit(q: Sql, job_id: int, cid: int, *, status: str, sources: Sequence[str], token: str,
                    now: datetime, note: str) -> Statement:
    """todo | doing | zombie → done or failed at the cid the operator saw."""
    error_sql = ", last_error = %s" if status == Status.FAILED else ""
    params: list[Any] = [status, token, q.dt(now), q.dt(now)]
    if status == Status.FAILED:
        params.append(note or "committed 'failed' by an operator")
    return Statement("operator_commit", (
        f"UPDATE {q.table} SET status = %s, cid = cid + 1, token = %s, lease_until = NULL, finished_at = %s, "
        f"updated_at = %s{error_sql} WHERE id = %s AND cid = %s AND status IN ({in_list(sources)})"),
        [*params, job_id, cid, *sources])


def cancel(q: Sql, refs: Iterable[tuple[int, int]], *, sources: Sequence[str], token: str, now: datetime,
           note: str) -> Statement:
    """todo | doing | zombie → cancelled at the cid the operator saw: cid + 1 fences off the run still going (its
    commit, renewal, snooze and progress are refused) and every queued copy (its claim matches nothing)."""
    cond, params = id_cid_condition(refs)
    return Statement("cancel", (
        f"UPDATE {q.table} SET status = %s, cid = cid + 1, token = %s, lease_until = NULL, finished_at = %s, "
        f"updated_at = %s, last_error = %s WHERE status IN ({in_list(sources)}) AND {cond}"),
        [Status.CANCELLED, token, q.dt(now), q.dt(now), note, *sources, *params])


# --------------------------------------------------------------------------------------------- reads

def select_due(q: Sql, task: str, count: int, *, now: datetime, lock: bool,
               key_limit: int | None = None) -> Statement:
    """Up to ``count`` due todo rows of ``task`` by priority, due time and id; ``lock`` skips rows others hold;
    ``key_limit`` leaves out rows whose ``concurrency_key`` has that many jobs running (a read: the limited
    claim decides under its lock, limits.py)."""
    busy, busy_params = "", list[Any]()
    if key_limit:
        busy = (f" AND (concurrency_key IS NULL OR concurrency_key NOT IN (SELECT concurrency_key FROM {q.table} "
                f"WHERE task = %s AND status = %s AND lease_until >= %s AND concurrency_key IS NOT NULL "
                f"GROUP BY concurrency_key HAVING COUNT(*) >= %s))")
        busy_params = [task, Status.DOING, q.dt(now), int(key_limit)]
    sql = (f"SELECT id, cid FROM {q.table} WHERE task = %s AND status = %s AND due_at <= %s{busy} "
           f"ORDER BY priority DESC, due_at, id LIMIT %s")
    return Statement("select_due", sql + (" FOR UPDATE SKIP LOCKED" if lock else ""),
                     [task, Status.TODO, q.dt(now), *busy_params, int(count)])
