"""The database's clock: every time the state machine, push and the sweeper write or compare comes from here.

Leases and due times are written by one host and compared by another, so they must be read on one clock: the
database's. Querying it for every statement would cost a round trip, so each process measures its offset once
per alias and advances the measurement with ``time.monotonic()``:

* an anchor is (the database's time, the monotonic time it stands for), the database's answer taken as read
  half-way through the round trip, so the error is at most half the round trip;
* it is measured again every :data:`RESYNC_SECONDS`, or at once when the local wall clock and the monotonic clock
  disagree about how much time passed since the last measurement by more than :data:`JUMP_SECONDS` (the host was
  suspended, or its clock was set) — the local wall clock itself is never used for the answer.

The adversary's view:

* **the answer is lost or the database is down**: a re-measurement that raises ``DatabaseError`` keeps the old
  anchor (monotonic time does not drift much in a minute), logged once per outage; with no anchor yet the error
  is raised, as any statement's would be — callers already handle it;
* **the answer is slow**: a re-measurement whose round trip took over :data:`MAX_ROUND_TRIP` is dropped while an
  anchor exists (its error bound would be worse than the anchor's);
* **the local clock jumps** (NTP step, an operator, a VM resumed): nothing changes, the answer is the anchor plus
  monotonic time; the disagreement only triggers a fresh measurement;
* **the transaction is broken** (an atomic block that needs rollback): nothing is measured in it; the existing
  anchor is used, or the local clock if there is none; inside a healthy atomic block the query runs in a
  savepoint, so a failure cannot break the caller's transaction.

SQLite is one file on one host, so every process shares the local clock: it is used as is. So is the local clock
for a vendor this module has no query for.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

log = logging.getLogger(__name__)

RESYNC_SECONDS = 30.0
JUMP_SECONDS = 1.0
MAX_ROUND_TRIP = 1.0
WARN_OFFSET_SECONDS = 1.0

QUERIES = {
    "mysql": "SELECT UTC_TIMESTAMP(6)",
    "postgresql": "SELECT clock_timestamp() AT TIME ZONE 'UTC'",
}


@dataclass(frozen=True, slots=True)
class _Anchor:
    db: datetime  # naive UTC
    mono: float
    wall: float  # time.time() at mono, to notice a jump or a suspend


_lock = threading.Lock()
_anchors: dict[str, _Anchor] = {}
_failing: set[str] = set()
_warned = False


def reset() -> None:
    """Forget every anchor and every logged warning (for tests)."""
    global _warned
    with _lock:
        _anchors.clear()
        _failing.clear()
        _warned = False


def db_now(using: str) -> datetime:
    """The database ``using``'s current UTC time, aware when ``settings.USE_TZ`` (like ``timezone.now()``)."""
    conn = connections[using]
    if conn.vendor not in QUERIES:
        return timezone.now()
    anchor = _anchors.get(using)
    mono = time.monotonic()
    if anchor is None or _stale(anchor, mono):
        anchor = _remeasure(using, anchor)
        if anchor is None:
            return timezone.now()  # a broken transaction and nothing measured yet
        mono = time.monotonic()
    naive = anchor.db + timedelta(seconds=mono - anchor.mono)
    return naive.replace(tzinfo=UTC) if settings.USE_TZ else naive


def offset(using: str) -> float:
    """Seconds the database's clock is ahead of this host's (negative: behind); for logs and diagnostics."""
    now = db_now(using)
    return (now.replace(tzinfo=UTC) if now.tzinfo is None else now).timestamp() - time.time()


def _stale(anchor: _Anchor, mono: float) -> bool:
    elapsed = mono - anchor.mono
    return elapsed >= RESYNC_SECONDS or abs((time.time() - anchor.wall) - elapsed) > JUMP_SECONDS


def _remeasure(using: str, old: _Anchor | None) -> _Anchor | None:
    conn = connections[using]
    if conn.in_atomic_block and conn.needs_rollback:
        return old
    try:
        new, round_trip = _measure(using)
    except DatabaseError as exc:
        if old is None:
            raise
        if using not in _failing:
            _failing.add(using)
            log.warning("meepo: cannot read the database %r's clock (%s); going on with the last reading", using,
                        exc)
        return old
    if old is not None and round_trip > MAX_ROUND_TRIP:
        return old
    _failing.discard(using)
    with _lock:
        _anchors[using] = new
    _warn_offset(new)
    return new


def _measure(using: str) -> tuple[_Anchor, float]:
    conn = connections[using]
    with transaction.atomic(using=using) if conn.in_atomic_block else contextlib.nullcontext(), conn.cursor() as cursor:
        wall, before = time.time(), time.monotonic()
        cursor.execute(QUERIES[conn.vendor])
        row = cursor.fetchone()
        after = time.monotonic()
    if row is None or not isinstance(row[0], datetime):
        raise DatabaseError(f"the database {using!r} answered {row!r} for its time")
    value = row[0] if row[0].tzinfo is None else row[0].astimezone(UTC).replace(tzinfo=None)
    middle = (before + after) / 2
    return _Anchor(db=value, mono=middle, wall=wall + (middle - before)), after - before


def _warn_offset(anchor: _Anchor) -> None:
    global _warned
    skew = anchor.db.replace(tzinfo=UTC).timestamp() - anchor.wall
    if _warned or abs(skew) <= WARN_OFFSET_SECONDS:
        return
    _warned = True
    log.warning("meepo: this host's clock is %.1f s %s the database's; django-meepo uses the database's",
                abs(skew), "behind" if skew > 0 else "ahead of")
