"""One outbox per process: the ids of committed, due jobs reach the workers through it, off the caller's thread.

Every path that makes a job due — a push, a retry, a hand-back, a rescue, a repush — gives the outbox its ids
*after the commit* (:func:`after_transaction`: at the caller's COMMIT inside a transaction, at once in autocommit, never
after a rollback). A background thread takes everything pending, coalesces it (one Redis round trip per task
and queue, however many transactions it came from) and dispatches it through the process's dispatcher, whose
circuit breaker skips dispatches at once while Redis is down.

The adversary's view:

* **The process dies before the thread dispatched.** The rows are committed ``todo`` jobs: the sweeper
  re-dispatches every due ``todo`` job that Redis's record lacks (a backlog already in Redis is never pushed
  again). At interpreter exit the outbox is flushed (for up to :data:`EXIT_FLUSH_SECONDS`).
* **A dispatch fails** (Redis down, a timeout): logged once per outage, never raised to anyone — the caller's
  commit is done. The sweeper dispatches the jobs once Redis answers.
* **A dispatch runs twice, or arrives after the job moved on.** A duplicated or stale entry is dropped at the
  pop (Redis's record holds another cid) or fails its claim (conditional on its cid).
* **The settings change between put and dispatch** (tests): the dispatcher and key prefixes are resolved at
  :meth:`Outbox.put`, on the caller's thread, so a late dispatch still goes where the commit meant it to.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction

from .conf import get_settings
from .dispatch import pgnotify, process_dispatcher
from .exceptions import MeepoError
from .registry import get_task
from .states import Dispatchable

log = logging.getLogger(__name__)

EXIT_FLUSH_SECONDS = 5.0


@dataclass(slots=True)
class _Chunk:
    dispatcher: Any
    prefixes: dict[str, str]
    items: list[Dispatchable] = field(default_factory=list)


class Outbox:
    """Pending dispatches and the thread that sends them (thread-safe; rebuilt in a forked child)."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._pending: list[_Chunk] = []
        self._busy = False
        self._thread: threading.Thread | None = None

    def put(self, items: Sequence[Dispatchable]) -> None:
        """Queue committed, due jobs for dispatch; returns at once."""
        if not items:
            return
        try:
            dispatcher = _dispatcher()
            if dispatcher is None:  # the database dispatcher: the committed row is the message
                return
            prefixes = _prefixes({i.task for i in items})
        except Exception as exc:  # a misconfigured Redis alias: reported by checks; the caller's commit is done
            log.warning("meepo: %d committed job(s) were not dispatched: %s: %s; the sweeper will dispatch them",
                        len(items), type(exc).__name__, exc, extra={"task": items[0].task, "job_id": items[0].id})
            return
        with self._cond:
            self._ensure_thread()
            last = self._pending[-1] if self._pending else None
            if last is not None and last.dispatcher is dispatcher and last.prefixes == prefixes:
                last.items.extend(items)
            else:
                self._pending.append(_Chunk(dispatcher, prefixes, list(items)))
            self._cond.notify()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything put so far was dispatched (or failed); False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="meepo-outbox", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                chunks, self._pending = self._pending, []
                self._busy = True
            try:
                for chunk in chunks:
                    self._send(chunk)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _send(self, chunk: _Chunk) -> None:
        """Dispatch one chunk; a failure is logged (the dispatcher's breaker keeps an outage to about one try,
        and so one line, per probe interval) and never raised."""
        try:
            chunk.dispatcher.dispatch(chunk.items, prefixes=chunk.prefixes)
        except Exception as exc:  # the rows are committed: whatever went wrong, the sweeper dispatches them
            expected = isinstance(exc, MeepoError | OSError)  # an outage; anything else (a bad LOCATION) is a bug
            ids = ", ".join(str(i.id) for i in chunk.items[:10]) + (" …" if len(chunk.items) > 10 else "")
            log.warning("meepo: %d committed job(s) (%s) were not dispatched: %s: %s; the sweeper will dispatch "
                        "them", len(chunk.items), ids, type(exc).__name__, exc, exc_info=not expected,
                        extra={"task": chunk.items[0].task, "job_id": chunk.items[0].id})


def _dispatcher() -> Any:
    if get_settings().dispatch == "database":
        return None
    return process_dispatcher()


def _prefixes(tasks: set[str]) -> dict[str, str]:
    default = get_settings().key_prefix
    result = {}
    for name in tasks:
        try:
            result[name] = get_task(name).options.key_prefix or default
        except MeepoError:
            result[name] = default
    return result


_outbox: Outbox | None = None
_lock = threading.Lock()


def outbox() -> Outbox:
    """This process's outbox (a new one in a forked child: threads do not survive a fork)."""
    global _outbox
    box = _outbox
    if box is None or box._pid != os.getpid():
        with _lock:
            if _outbox is None or _outbox._pid != os.getpid():
                _outbox = Outbox()
            box = _outbox
    return box


def put(items: Sequence[Dispatchable]) -> None:
    outbox().put(items)


def flush(timeout: float = 5.0) -> bool:
    """Wait for this process's pending dispatches (tests, and a short-lived process before it exits)."""
    box = _outbox
    return True if box is None or box._pid != os.getpid() else box.flush(timeout)


@atexit.register
def _flush_at_exit() -> None:
    flush(EXIT_FLUSH_SECONDS)


# --------------------------------------------------------------------------------------------- after commit

@dataclass(slots=True)
class _OnCommit:
    items: list[Dispatchable] = field(default_factory=list)
    notified: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)

    def __call__(self) -> None:
        items, self.items = self.items, []
        put(items)


def after_transaction(items: Sequence[Dispatchable], *, using: str) -> None:
    """Give ``items`` to the outbox once the current transaction on ``using`` commits (at once in autocommit).

    A transaction that makes many jobs due registers one callback, which the items of the whole transaction
    join; a rollback drops them with it."""
    if not items:
        return
    conn = connections[using]
    notifies = conn.vendor == "postgresql" and get_settings().dispatch == "database"
    if not conn.in_atomic_block:
        if notifies:
            _notify(conn, {i.task for i in items}, set())
        put(items)
        return
    pending: _OnCommit | None = getattr(conn, "_meepo_pending", None)
    if pending is None or not any(entry[1] is pending for entry in conn.run_on_commit):
        pending = _OnCommit()
        conn._meepo_pending = pending  # type: ignore[attr-defined]
        transaction.on_commit(pending, using=using)
    pending.items.extend(items)
    if notifies:
        _notify(conn, {i.task for i in items}, pending.notified)


def _notify(conn: Any, tasks: set[str], sent: set[tuple[str, tuple[str, ...]]]) -> None:
    """NOTIFY each task's channel once per transaction (and savepoint level: a notification sent inside a savepoint
    that rolls back is gone with it). Inside a transaction delivered at COMMIT, dropped at a rollback; in autocommit
    a failure is logged (the row is committed, polling finds it)."""
    level = tuple(conn.savepoint_ids)
    todo = {t for t in tasks if (t, level) not in sent}
    if not todo:
        return
    prefixes = _prefixes(todo)
    if conn.in_atomic_block:
        pgnotify.notify(conn, ((pgnotify.channel_for(prefixes[t]), t) for t in todo))
    else:
        try:
            pgnotify.notify(conn, ((pgnotify.channel_for(prefixes[t]), t) for t in todo))
        except Exception as exc:  # committed already: the poll finds the job
            log.warning("meepo: NOTIFY failed (%s); idle workers find the job(s) at their next poll", exc)
    sent.update((t, level) for t in todo)
