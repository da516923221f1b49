"""job.progress(): bad input named at once, and the throttle (at most one write per interval, the last flushed)."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError

from django_meepo.progress import NOTE_MAX_CHARS, Progress, Throttle, validate
from django_meepo.statemachine import validate_snooze


@pytest.mark.parametrize(("done", "total", "note", "named"), [
    (-1, 10, "", "-1"), (1, -10, "", "-10"), (11, 10, "", "(11)"), (1.5, 10, "", "1.5"), (1, 10.0, "", "10.0"),
    ("1", 10, "", "'1'"), (True, 10, "", "True"), (1, None, "", "None"), (1, 2**63, "", str(2**63)),
    (1, 10, 42, "42"),
])
def test_bad_progress_is_a_value_error_naming_the_value(done, total, note, named) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as raised:
        validate(done, total, note)
    assert named in str(raised.value)


def test_good_progress_is_kept_and_a_long_note_is_cut() -> None:
    assert validate(0, 0) == Progress(0, 0, "")
    assert validate(10, 10, "a\x00b") == Progress(10, 10, "ab")
    assert validate(1, 2, "x" * 500).note == "x" * NOTE_MAX_CHARS
    assert Progress(1, 4).percent == 25.0 and Progress(0, 0).percent == 0.0


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf"), "1", None, True])
def test_bad_snooze_seconds_are_a_value_error_naming_them(seconds) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="snooze takes") as raised:
        validate_snooze(seconds)
    assert repr(seconds) in str(raised.value)


def test_the_throttle_writes_the_first_report_then_at_most_one_per_interval_and_flushes_the_last() -> None:
    written: list[Progress] = []
    throttle = Throttle(lambda p: written.append(p) is None, interval=3600)
    for i in range(100):
        throttle.report(Progress(i, 100))
    assert written == [Progress(0, 100)], "only the first is written within the interval"
    throttle.flush()
    assert written == [Progress(0, 100), Progress(99, 100)], "the flush writes the last report"
    throttle.flush()
    assert len(written) == 2, "nothing pending: nothing written"


def test_with_interval_zero_every_report_is_written() -> None:
    written: list[Progress] = []
    throttle = Throttle(lambda p: written.append(p) is None, interval=0)
    for i in range(5):
        throttle.report(Progress(i, 5))
    assert [p.done for p in written] == [0, 1, 2, 3, 4]


def test_a_write_that_raises_is_logged_and_the_value_kept_for_the_flush(caplog) -> None:  # type: ignore[no-untyped-def]
    written: list[Progress] = []
    failures = [OperationalError(2006, "MySQL server has gone away")]

    def write(progress: Progress) -> bool:
        if failures:
            raise failures.pop()
        written.append(progress)
        return True

    throttle = Throttle(write, interval=3600, label="record job 7")
    with caplog.at_level(logging.WARNING, logger="django_meepo.progress"):
        throttle.report(Progress(1, 2))  # raises inside: not into the job
    assert "record job 7: could not write its progress 1/2" in caplog.text
    throttle.flush()
    assert written == [Progress(1, 2)]


def test_a_report_inside_the_jobs_own_transaction_waits_for_one_outside_it() -> None:
    written: list[Progress] = []
    inside = [True]
    throttle = Throttle(lambda p: written.append(p) is None, interval=0, can_write=lambda: not inside[0])
    throttle.report(Progress(1, 3))
    throttle.report(Progress(2, 3))
    assert written == []
    inside[0] = False
    throttle.flush()
    assert written == [Progress(2, 3)]


@pytest.mark.parametrize("interval", [-1, float("nan"), "1"])
def test_a_bad_interval_is_refused(interval) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="progress interval"):
        Throttle(lambda p: True, interval=interval)
