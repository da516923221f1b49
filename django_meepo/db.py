"""Database plumbing: SQL fragments shared by the state machine, lost-connection handling, clean connections.

A statement whose connection died before its answer arrived (``KILL CONNECTION``, "server has gone away") may
or may not have committed. :func:`run_checked` closes the dead connection, asks a *verify* function (a read on a
fresh connection) whether the intended change is there, and only re-runs the statement when it is not.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from django.apps import apps
from django.db import DatabaseError, InterfaceError, OperationalError, connections

if TYPE_CHECKING:
    from .models import Job

log = logging.getLogger(__name__)

T = TypeVar("T")

# MySQL/MariaDB client and server codes meaning "the connection is gone".
_LOST_CODES = {
    2006,  # server has gone away
    2013,  # lost connection during query
    2055,  # lost connection ... system error
    1927,  # MariaDB: connection was killed
    1053,  # server shutdown in progress
    4031,  # MySQL 8: disconnected by the server because of inactivity
    2003,  # can't connect
    2002,  # can't connect through socket
}
_LOST_WORDS = ("gone away", "lost connection", "connection was killed", "server closed the connection",
               "connection already closed", "terminating connection", "connection is closed",
               "can't connect", "connection refused", "the connection is lost", "consuming input failed")


def job_model() -> type[Job]:
    """The Job model, from the app registry: the modules below models.py (the transport, the statements, the
    inserts) reach it this way and never import models.py, which delegates ``Job.objects.push`` to them."""
    return apps.get_model("django_meepo", "Job")  # type: ignore[no-any-return]


def job_table() -> str:
    return job_model()._meta.db_table


def new_token() -> str:
    """A nonce for one batch statement; written into every row it changes so they can be read back exactly."""
    return uuid.uuid4().hex


def is_connection_lost(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    if isinstance(exc, InterfaceError):
        return True
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code in _LOST_CODES:
        return True
    text = str(exc).lower()
    return any(w in text for w in _LOST_WORDS)


def discard_connection(using: str) -> None:
    """Close a connection that failed, so that the next query reconnects."""
    conn = connections[using]
    try:
        conn.close()
    except DatabaseError:
        conn.connection = None  # the socket is dead; forget it


def run_checked(using: str, statement: Callable[[], T], verify: Callable[[], T | None], *,
                what: str, tries: int = 8, first_delay: float = 0.05) -> T:
    """Run ``statement``; if its connection is lost, find out with ``verify`` whether it took effect.

    ``verify`` returns the statement's result when the change is in the database, or ``None`` when it is not
    (then the statement is run again — every statement here is conditional, so running it again is safe).
    ``tries`` bounds the connection errors tolerated in all. Inside a caller's transaction nothing can be
    retried: the error propagates.
    """
    delay = first_delay
    failures = 0
    while True:
        try:
            return statement()
        except (OperationalError, InterfaceError) as exc:
            failures += 1
            if connections[using].in_atomic_block or not is_connection_lost(exc) or failures >= tries:
                raise
            log.warning("meepo: connection lost during %s (%s); re-checking on a new connection", what, exc)
        while True:
            discard_connection(using)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            try:
                outcome = verify()
                break
            except (OperationalError, InterfaceError) as exc:
                failures += 1
                if not is_connection_lost(exc) or failures >= tries:
                    raise
                log.warning("meepo: database still unreachable while re-checking %s (%s)", what, exc)
        if outcome is not None:
            log.info("meepo: %s had taken effect before its connection was lost", what)
            return outcome


def clean_connections() -> None:
    """Return this thread's connections to a clean state between jobs: no open transaction, none broken."""
    for conn in connections.all(initialized_only=True):
        try:
            if conn.connection is not None and not conn.get_autocommit():
                log.warning("meepo: job left a transaction open on %r; rolling it back", conn.alias)
                conn.rollback()
                conn.set_autocommit(True)
            if conn.in_atomic_block:
                log.error("meepo: job left an atomic block open on %r; dropping the connection", conn.alias)
                _forget_transaction(conn)
                continue
            conn.close_if_unusable_or_obsolete()
        except DatabaseError:
            discard_connection(conn.alias)


def _forget_transaction(conn: Any) -> None:
    """Drop a connection stuck inside an atomic block the job never exited (the server rolls it back)."""
    try:
        if conn.connection is not None:
            conn.connection.close()
    except Exception:
        pass
    conn.connection = None
    conn.in_atomic_block = False
    conn.savepoint_ids = []
    conn.atomic_blocks = []
    conn.needs_rollback = False
    conn.closed_in_transaction = False
    conn.run_on_commit = []
    conn.autocommit = True


def close_thread_connections() -> None:
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except DatabaseError:
            conn.connection = None


class Sql:
    """Quoted names and adapted values for hand-written statements on one database alias."""

    def __init__(self, using: str, table: str) -> None:
        self.using = using
        self.conn = connections[using]
        self.table = self.conn.ops.quote_name(table)

    def dt(self, value: datetime | None) -> Any:
        return self.conn.ops.adapt_datetimefield_value(value)

    def execute(self, sql: str, params: Sequence[Any]) -> int:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    def fetchall(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())


def id_cid_condition(refs: Iterable[tuple[int, int]]) -> tuple[str, list[Any]]:
    """``id IN (...) AND (id, cid) IN ((..), ..)``: each row conditioned on its own cid, found by primary key."""
    pairs = list(refs)
    ids = [i for i, _ in pairs]
    flat: list[Any] = []
    for i, c in pairs:
        flat.extend((i, c))
    sql = (f"id IN ({', '.join(['%s'] * len(ids))}) AND (id, cid) IN "
           f"({', '.join(['(%s, %s)'] * len(pairs))})")
    return sql, ids + flat


def in_list(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))
