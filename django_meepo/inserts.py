"""Hand-written INSERTs of new jobs (the push hot path): one row, or many rows per statement.

Ids come back with ``RETURNING id`` where the database has it (MariaDB 10.5+, PostgreSQL, SQLite 3.35+).
Elsewhere (MySQL) the rows of a statement carry a token and are read back from the statement's first id
upwards — ids are not assumed consecutive, only larger than that first id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connections

from .db import job_model, new_token
from .exceptions import MeepoError
from .tables import for_task

if TYPE_CHECKING:
    from .models import AbstractJob

__all__ = ["NewJob", "as_model", "insert", "job_model"]

_COLUMNS = ("task", "status", "cid", "priority", "payload", "idempotency_key", "failed_times", "rescues",
            "attempts", "created_at", "updated_at", "due_at", "worker", "token", "last_error", "unique_key",
            "unique_hold")
# A unique key is written twice: ``unique_key`` is kept for display, ``unique_hold`` holds the key (unique per
# task) until a later push finds the job out of its scope and lets go of it (``unique.py``).
_ROW = "(%s, 'todo', 1, %s, %s, %s, 0, 0, 0, %s, %s, %s, '', %s, '', %s, %s)"
# A push inside a recorded trace (tracing.py) also writes its trace context; other pushes leave the column out
# (NULL), so their statement is the same as without tracing.
_TRACED_COLUMNS = (*_COLUMNS, "trace_context")
_TRACED_ROW = _ROW[:-1] + ", %s)"
# A push with a concurrency key (limits.py) writes both columns (the trace context maybe NULL).
_KEYED_COLUMNS = (*_TRACED_COLUMNS, "concurrency_key")
_KEYED_ROW = _TRACED_ROW[:-1] + ", %s)"


@dataclass(frozen=True, slots=True)
class NewJob:
    task: str
    payload: bytes
    priority: int
    idempotency_key: str | None
    created_at: datetime
    due_at: datetime
    unique_key: str | None = None
    trace_context: str | None = None
    concurrency_key: str | None = None


_heads: dict[tuple[str, str, bool, bool], str] = {}


def _head(alias: str, table: str, traced: bool = False, keyed: bool = False) -> str:
    conn = connections[alias]
    head = _heads.get((conn.vendor, table, traced, keyed))
    if head is None:
        quote = conn.ops.quote_name
        names = _KEYED_COLUMNS if keyed else _TRACED_COLUMNS if traced else _COLUMNS
        columns = ", ".join(quote(c) for c in names)
        head = _heads[(conn.vendor, table, traced, keyed)] = f"INSERT INTO {quote(table)} ({columns}) VALUES "
    return head


def _params(alias: str, jobs: Sequence[NewJob], token: str, traced: bool = False,
            keyed: bool = False) -> list[Any]:
    adapt = connections[alias].ops.adapt_datetimefield_value
    adapted: dict[datetime, Any] = {}  # a batch shares one or two datetimes: adapt each once
    params: list[Any] = []
    for j in jobs:
        created = adapted.get(j.created_at) or adapted.setdefault(j.created_at, adapt(j.created_at))
        due = adapted.get(j.due_at) or adapted.setdefault(j.due_at, adapt(j.due_at))
        params += [j.task, j.priority, j.payload, j.idempotency_key, created, created, due, token, j.unique_key,
                   j.unique_key]
        if traced or keyed:
            params.append(j.trace_context)
        if keyed:
            params.append(j.concurrency_key)
    return params


def _uniform_mysql_rows(alias: str, jobs: Sequence[NewJob], token: str) -> tuple[str, list[Any]] | None:
    """MySQL fast path for a batch whose rows differ only by payload: escape the shared values once and pass
    only the payloads as parameters (escaping every value of every row dominated the cost of a big batch)."""
    conn = connections[alias]
    first = jobs[0]
    if conn.vendor != "mysql" or len(jobs) < 2 or any(
            (j.task, j.priority, j.idempotency_key, j.unique_key, j.created_at, j.due_at, j.trace_context,
             j.concurrency_key)
            != (first.task, first.priority, None, None, first.created_at, first.due_at, None, None) for j in jobs):
        return None
    conn.ensure_connection()
    adapt = conn.ops.adapt_datetimefield_value

    def literal(value: Any) -> str:
        raw = conn.connection.literal(value)
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return text.replace("%", "%%")  # the statement still goes through %s formatting

    created = literal(adapt(first.created_at))
    row = (f"({literal(first.task)}, 'todo', 1, {int(first.priority)}, %s, NULL, 0, 0, 0, {created}, {created}, "
           f"{literal(adapt(first.due_at))}, '', {literal(token)}, '', NULL, NULL)")
    return ", ".join([row] * len(jobs)), [j.payload for j in jobs]


def insert(alias: str, jobs: Sequence[NewJob]) -> list[int]:
    """INSERT ``jobs`` (all of one task) in one statement, into the task's table (in the caller's transaction,
    if any); their ids, in order."""
    conn = connections[alias]
    table = for_task(jobs[0].task).name
    token = new_token() if len(jobs) > 1 else ""
    uniform = _uniform_mysql_rows(alias, jobs, token)
    # The rows of one push or batch share one trace context (tracing.py): the first row's says whether it is set.
    traced = uniform is None and jobs[0].trace_context is not None
    keyed = uniform is None and any(j.concurrency_key is not None for j in jobs)
    row = _KEYED_ROW if keyed else _TRACED_ROW if traced else _ROW
    rows, params = uniform or (", ".join([row] * len(jobs)), _params(alias, jobs, token, traced, keyed))
    sql = _head(alias, table, traced, keyed) + rows
    # One row on MySQL/MariaDB or SQLite: the connection's last insert id is cheaper than a RETURNING result set.
    returning = conn.features.can_return_rows_from_bulk_insert and not (len(jobs) == 1 and conn.vendor != "postgresql")
    if returning:
        sql += f" RETURNING {conn.ops.quote_name('id')}"
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            ids = [row[0] for row in cursor.fetchall()]
        elif len(jobs) == 1:
            ids = [cursor.lastrowid]
        elif conn.vendor == "sqlite":  # SQLite < 3.35 (no RETURNING): lastrowid is the batch's *last* id
            cursor.execute(f"SELECT id FROM {conn.ops.quote_name(table)} WHERE id <= %s AND token = %s "
                           f"ORDER BY id DESC LIMIT %s", [cursor.lastrowid, token, len(jobs)])
            ids = sorted(row[0] for row in cursor.fetchall())
        else:  # MySQL: LAST_INSERT_ID() is the batch's *first* id; the token tells this batch's rows apart
            cursor.execute(f"SELECT id FROM {conn.ops.quote_name(table)} WHERE id >= %s AND token = %s "
                           f"ORDER BY id LIMIT %s", [cursor.lastrowid, token, len(jobs)])
            ids = [row[0] for row in cursor.fetchall()]
    if len(ids) != len(jobs):
        raise MeepoError(f"inserted {len(jobs)} job(s) but read back {len(ids)} id(s)")
    return ids


def as_model(alias: str, job_id: int, new: NewJob) -> AbstractJob:
    """The job (of its task's model) for a row just inserted (no query; built like a row read from the
    database)."""
    values = {"id": job_id, "task": new.task, "status": "todo", "cid": 1, "priority": new.priority,
              "payload": new.payload, "idempotency_key": new.idempotency_key, "failed_times": 0, "rescues": 0,
              "attempts": 0, "created_at": new.created_at, "updated_at": new.created_at, "due_at": new.due_at,
              "started_at": None, "finished_at": None, "lease_until": None, "worker": "", "token": "",
              "last_error": "", "result": None, "progress_done": None, "progress_total": None,
              "progress_note": None, "progress_at": None,
              "unique_key": new.unique_key, "unique_hold": new.unique_key, "trace_context": new.trace_context,
              "concurrency_key": new.concurrency_key}
    model = for_task(new.task).model
    fields = [f.attname for f in model._meta.concrete_fields]
    return model.from_db(alias, fields, [values[name] for name in fields])
