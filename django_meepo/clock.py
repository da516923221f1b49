"""The database's clock: every time the state machine, push and the sweeper write or compare comes from here.

Leases and due times are written by one host and compared by another, so they are read on one clock, the
database's. Each process measures it once per alias (an anchor: the database's answer, taken as read half-way
through the round trip, so off by at most half of it) and advances it with ``time.monotonic()``. It measures again
every :data:`RESYNC_SECONDS`, and at once when the wall clock and the monotonic clock disagree by more than
:data:`JUMP_SECONDS` about the time since the anchor (the clock was set, the host suspended).

The adversary's view:

* **the answer is lost, or the database is down**: the ``DatabaseError`` of a re-measurement keeps the old anchor
  (logged once per outage; tried again in :data:`RETRY_SECONDS`, not on every call); with no anchor yet it is
  raised, as any statement's would be, and callers already handle that;
* **the answer is slow**: a re-measurement with a round trip over :data:`MAX_ROUND_TRIP` is dropped while an anchor
  exists (its error bound would be worse);
* **the local clock jumps**: the answer does not move (anchor + monotonic time); the jump only triggers a
  measurement;
* **the transaction is broken** (an atomic block that needs rollback): nothing is measured in it, the anchor is
  used, or the local clock if there is none; in a healthy atomic block the query runs in a savepoint, so its
  failure cannot break the caller's transaction.

SQLite is one file on one host, so its processes share the local clock: it is used as is (so for a vendor with no
query here).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

log = logging.getLogger(__name__)

RESYNC_SECONDS = 30.0
RETRY_SECONDS = 1.0  # after a failed or too slow measurement: not one query per call while the database is ill
JUMP_SECONDS = 1.0
MAX_ROUND_TRIP = 1.0
WARN_OFFSET_SECONDS = 1.0

QUERIES = {"mysql": "SELECT UTC_TIMESTAMP(6)", "postgresql": "SELECT clock_timestamp() AT TIME ZONE 'UTC'"}


@dataclass(frozen=True, slots=True)
class _Anchor:
    db: datetime  # naive UTC
    mono: float
    wall: float  # time.time() at mono, to notice a jump or a suspend
    due: float  # the monotonic time at which to measure again


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
    """The database ``using``'s current time in Django's convention, like ``timezone.now()``: aware UTC when
    ``settings.USE_TZ``, else naive local time in ``TIME_ZONE`` (what Django stores then)."""
    if connections[using].vendor not in QUERIES:
        return timezone.now()
    anchor = _anchors.get(using)
    mono = time.monotonic()
    if anchor is None or mono >= anchor.due or abs(time.time() - anchor.wall - (mono - anchor.mono)) > JUMP_SECONDS:
        anchor = _remeasure(using, anchor)
        if anchor is None:
            return timezone.now()  # a broken transaction and nothing measured yet
        mono = time.monotonic()
    aware = (anchor.db + timedelta(seconds=mono - anchor.mono)).replace(tzinfo=UTC)
    return aware if settings.USE_TZ else timezone.make_naive(aware, timezone.get_default_timezone())


def offset(using: str) -> float:
    """Seconds the database's clock is ahead of this host's (negative: behind); for logs and diagnostics."""
    value = db_now(using)
    if value.tzinfo is None:  # USE_TZ False: naive local time in TIME_ZONE
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return value.timestamp() - time.time()


def _remeasure(using: str, old: _Anchor | None) -> _Anchor | None:
    conn = connections[using]
    if conn.in_atomic_block and conn.needs_rollback:
        return old
    try:
        new, round_trip = _measure(using)
    except DatabaseError as exc:
        if old is None:
            raise
        with _lock:
            first = using not in _failing
            _failing.add(using)
        if first:
            log.warning("meepo: cannot read the database %r's clock (%s); going on with the last reading", using,
                        exc)
        return _keep(using, old)
    if old is not None and round_trip > MAX_ROUND_TRIP:
        return _keep(using, old)
    with _lock:
        _failing.discard(using)
        _anchors[using] = new
    _warn_offset(new)
    return new


def _keep(using: str, old: _Anchor) -> _Anchor:
    """The old anchor, tried again in RETRY_SECONDS; a jump of the wall clock since it was taken is absorbed."""
    mono = time.monotonic()
    kept = replace(old, wall=time.time() - (mono - old.mono), due=mono + RETRY_SECONDS)
    with _lock:
        _anchors[using] = kept
    return kept


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
    return _Anchor(db=value, mono=middle, wall=wall + (middle - before), due=after + RESYNC_SECONDS), after - before


def _warn_offset(anchor: _Anchor) -> None:
    global _warned
    skew = anchor.db.replace(tzinfo=UTC).timestamp() - anchor.wall
    with _lock:
        if _warned or abs(skew) <= WARN_OFFSET_SECONDS:
            return
        _warned = True
    log.warning("meepo: this host's clock is %.1f s %s the database's; django-meepo uses the database's",
                abs(skew), "behind" if skew > 0 else "ahead of")
