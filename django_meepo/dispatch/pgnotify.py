"""PostgreSQL LISTEN/NOTIFY for the database dispatcher: an idle worker wakes when a job of its tasks is made due.

Producer side (:func:`notify`): ``outbox.after_transaction`` sends ``pg_notify(<prefix>:due, <task>)`` on the
caller's own connection, once per transaction and task. Inside a transaction PostgreSQL delivers it at COMMIT and
drops it at a rollback (so a rolled-back push wakes nobody); in autocommit it follows the committed row.

Consumer side (:class:`Listener`): a daemon thread holds one dedicated psycopg 3 connection in autocommit,
LISTENs on the channels of its worker's key prefixes and sets an event for a notification naming one of its tasks.
If the connection drops it logs once, reconnects with backoff and sets the event (notifications may have been
missed meanwhile: one fetch finds them). Polling stays the fallback: a lost notification costs one poll interval.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

MAX_CHANNEL = 63  # PostgreSQL's NAMEDATALEN - 1


def channel_for(prefix: str) -> str:
    """The channel of a key prefix: ``<prefix>:due``, hashed down when longer than PostgreSQL allows."""
    name = f"{prefix}:due"
    if len(name.encode()) <= MAX_CHANNEL:
        return name
    return "meepo:" + hashlib.sha256(name.encode()).hexdigest()[:40] + ":due"


def notify(cursor_owner: object, pairs: Iterable[tuple[str, str]]) -> None:
    """One statement: ``SELECT pg_notify(channel, task), ...`` for each (channel, task) pair on this Django
    connection. Run twice: PostgreSQL delivers identical notifications of one transaction once."""
    pairs = sorted(set(pairs))
    if not pairs:
        return
    sql = "SELECT " + ", ".join("pg_notify(%s, %s)" for _ in pairs)
    params = [v for pair in pairs for v in pair]
    with cursor_owner.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(sql, params)


class Listener:
    """A thread that LISTENs on ``channels`` and sets :attr:`event` for a notification naming one of ``tasks``."""

    def __init__(self, params: dict[str, Any], channels: Iterable[str], tasks: Iterable[str]) -> None:
        self.params = {k: v for k, v in params.items() if k not in ("context", "cursor_factory")}
        self.channels = sorted(set(channels))
        self.tasks = frozenset(tasks)
        self.event = threading.Event()
        self.connected = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meepo-listen", daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        """Block until notified or ``timeout`` passed; True if notified (the event is then cleared)."""
        woken = self.event.wait(timeout)
        if woken:
            self.event.clear()
        return woken

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        import psycopg
        from psycopg import sql

        delay, failed = 0.1, False
        while not self._stop.is_set():
            try:
                with psycopg.connect(**self.params, autocommit=True) as conn:
                    for channel in self.channels:
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.connected = True
                    self.event.set()  # what was pushed while not listening is found by one fetch
                    if failed:
                        log.warning("meepo: listening for notifications again on %s", ", ".join(self.channels))
                    delay, failed = 0.1, False
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            if note.payload in self.tasks:
                                self.event.set()
            except Exception as exc:  # the connection dropped or never came: poll meanwhile
                self.connected = False
                if not failed:
                    log.warning("meepo: LISTEN connection lost (%s); polling until it is back", exc)
                    failed = True
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
        self.connected = False
