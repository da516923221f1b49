"""The jobs of the chaos tool (``python -m bench.chaos``, docs/reliability.md): each execution is recorded.

Every execution inserts one ``testproject_chaosrun`` row when it starts and sets its ``ended`` when it returns,
on a MariaDB/MySQL connection of its own (per thread, autocommit), never on the job's Django connection: a job
transaction rolled back, or a Django connection killed mid-job, does not erase the record of a run that happened.

Retry-safety: the run id is drawn once per execution; the insert is ``INSERT IGNORE`` on that unique id and the
end is ``UPDATE … WHERE ended IS NULL``. If an answer is lost (KILL CONNECTION, server gone away) the statement
may or may not have committed; it is sent again on a new connection, which either changes nothing or does what the
first did not. If every retry fails the job raises (a failure, retried by django-meepo) before doing its work.
Times are the database's ``UTC_TIMESTAMP(6)``, so a worker whose clock is wrong records true times.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from typing import Any

from django.conf import settings

from django_meepo import JobContext, task

from .jobs import FAST

HUGE_BYTES = 20_000_000  # over MariaDB's default max_allowed_packet (16 MiB)
RETRIES = 20
_local = threading.local()


def _connect() -> Any:
    import MySQLdb

    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("mysql"):
        raise RuntimeError("the chaos jobs record their runs on MariaDB/MySQL only")
    conn = MySQLdb.connect(host=db["HOST"] or "127.0.0.1", port=int(db["PORT"] or 3306), user=db["USER"] or "root",
                           password=db["PASSWORD"] or "", database=db["NAME"], charset="utf8mb4",
                           autocommit=True, connect_timeout=5)
    conn.cursor().execute("SET time_zone = '+00:00'")
    return conn


def _execute(sql: str, args: tuple[Any, ...]) -> None:
    """Run one idempotent statement on this thread's history connection, reconnecting and resending it when the
    connection fails (whether the lost statement committed does not matter: resending changes nothing then)."""
    error: Exception | None = None
    for attempt in range(RETRIES):
        try:
            if getattr(_local, "conn", None) is None:
                _local.conn = _connect()
            _local.conn.cursor().execute(sql, args)
            return
        except Exception as exc:  # MySQLdb.OperationalError and friends: a dead or killed connection
            error = exc
            conn, _local.conn = getattr(_local, "conn", None), None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            time.sleep(min(0.05 * 2 ** attempt, 1.0))
    raise RuntimeError(f"could not record a chaos run after {RETRIES} tries: {error}")


def record_start(job: JobContext) -> str:
    """Insert this execution's row; returns its run id."""
    run_id = uuid.uuid4().hex
    _execute("INSERT IGNORE INTO testproject_chaosrun (run_id, job_id, task, cid, attempt, pid, started) "
             "VALUES (%s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6))",
             (run_id, job.id, job.task, job.cid, job.attempt, os.getpid()))
    return run_id


def record_end(run_id: str) -> None:
    _execute("UPDATE testproject_chaosrun SET ended = UTC_TIMESTAMP(6) WHERE run_id = %s AND ended IS NULL",
             (run_id,))


@task("chaos", parallel=4, max_failed_times=8, **FAST)
def chaos(job: JobContext) -> str:
    """Records its run, sleeps ``{"sleep": s}`` seconds, records its end."""
    run_id = record_start(job)
    time.sleep(float(job.json().get("sleep", 0)))
    record_end(run_id)
    return "ok"


@task("chaos_poison", parallel=1, max_failed_times=1, **FAST)
def chaos_poison(job: JobContext) -> str:
    """Records its run, then returns what cannot be stored: ``{"kind": "huge"}`` (over max_allowed_packet) or
    ``{"kind": "surrogate"}`` (a lone surrogate, not encodable as UTF-8). django-meepo cuts or escapes such a
    result and records the job ``done``; should it fail instead, the failure is final (MAX_FAILED_TIMES 1)."""
    run_id = record_start(job)
    kind = job.json().get("kind", "huge")
    record_end(run_id)
    return "h" * HUGE_BYTES if kind == "huge" else "before \ud800 after"
