"""A running job's progress (``job.progress(done, total, note)``): checked at once, written at most every
``MEEPO["PROGRESS_INTERVAL"]`` seconds (default 1 s) per job, the last value written when the run ends.

The write itself is ``statemachine.write_progress`` (one UPDATE at the claim's cid while ``doing``); this module
only decides *when* to write, so a job that reports every item costs one statement per interval, not per item.

* **The last report is not lost** when the run ends normally: the worker calls :meth:`Throttle.flush` after the
  job function returns or raises, and ``job.commit()`` / ``job.snooze()`` flush before they change the job (a
  flush after the cid moved on would write nothing). A value that could not be written then (the database
  unreachable at that moment) is lost: the row keeps the value written before it.
* **A write that raises** (the database unreachable, or anything else) is logged, never raised into the job
  function: progress is advice, and the run goes on; the value stays pending for the next report or the flush.
* **Inside a transaction of the job function's own** (``transaction.atomic``, or autocommit turned off) a
  report is kept, not written: the row lock it would take until that COMMIT would hold up the lease renewals of
  the monitor. The next report made outside it, or the flush, writes it.
* **A stale run** (repushed, rescued, snoozed or committed meanwhile) writes nothing: the write reports it, and
  the worker tells the job its lease was lost (``job.stopping`` becomes True), as a heartbeat does.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .text import clean

log = logging.getLogger(__name__)

NOTE_MAX_CHARS = 200  # Job.progress_note's length; a longer note is cut (its head kept)
COUNT_MAX = 2**63 - 1  # Job.progress_done / progress_total are 64-bit


@dataclass(frozen=True, slots=True)
class Progress:
    """One report: ``done`` of ``total`` items, and a short note."""

    done: int
    total: int
    note: str = ""

    @property
    def percent(self) -> float:
        """0 to 100 (a total of 0 is 0 %)."""
        return 100.0 * self.done / self.total if self.total else 0.0


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"progress {name} must be a whole number, not {value!r}")
    if not 0 <= value <= COUNT_MAX:
        raise ValueError(f"progress {name} must be from 0 to {COUNT_MAX}, not {value!r}")
    return value


def validate(done: object, total: object, note: object = "") -> Progress:
    """A :class:`Progress`, or ValueError naming the value that is wrong (nothing is written then)."""
    done_n, total_n = _count(done, "done"), _count(total, "total")
    if done_n > total_n:
        raise ValueError(f"progress done ({done_n!r}) must not exceed total ({total_n!r})")
    if not isinstance(note, str):
        raise ValueError(f"progress note must be a string, not {note!r}")
    return Progress(done_n, total_n, clean(note)[:NOTE_MAX_CHARS])


def validate_interval(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"progress interval must be a number of seconds >= 0, not {value!r}")
    return float(value)


class Throttle:
    """The reports of one run: written through ``write`` at most every ``interval`` seconds (monotonic time).

    ``write(progress)`` returns False when the row moved on (a stale run); what it raises is logged here."""

    def __init__(self, write: Callable[[Progress], bool], interval: float, *, label: str = "job",
                 can_write: Callable[[], bool] = lambda: True) -> None:
        self._write = write
        self._can_write = can_write
        self.interval = validate_interval(interval)
        self.label = label
        self._lock = threading.Lock()  # one write at a time, in the order reported
        self._pending: Progress | None = None
        self._written_at = -math.inf
        self.last: Progress | None = None  # the last value written

    def report(self, progress: Progress) -> None:
        """Keep ``progress``; write it now when the last write is ``interval`` seconds old."""
        with self._lock:
            self._pending = progress
            if time.monotonic() - self._written_at >= self.interval:
                self._write_pending()

    def flush(self) -> None:
        """Write the pending report, if any, at once (the run ends, or is about to commit or snooze)."""
        with self._lock:
            if self._pending is not None:
                self._write_pending()

    def _write_pending(self) -> None:
        progress = self._pending
        if progress is None:
            return
        try:
            if not self._can_write():
                return
            self._write(progress)
        except Exception as exc:  # the job goes on; the next report or the flush tries again
            log.warning("meepo: %s: could not write its progress %s/%s (%s: %s); it is kept for the next write",
                        self.label, progress.done, progress.total, type(exc).__name__, exc)
            return
        self._pending = None
        self._written_at = time.monotonic()
        self.last = progress
