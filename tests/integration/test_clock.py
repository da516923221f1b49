"""``clock.db_now``: the database's time, measured once and advanced by the monotonic clock (real databases)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_meepo import Job, clock

pytestmark = pytest.mark.django_db
# db_now's error is half the round trip of its measurement; on a busy test machine allow this much.
TOLERANCE = timedelta(milliseconds=50)
HOUR = 3600.0


@pytest.fixture(autouse=True)
def fresh_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


@pytest.fixture
def not_sqlite() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite is one host: db_now is the local clock by design")


def database_time() -> datetime:
    """The database's own clock, read directly (aware UTC)."""
    query = {"mysql": "SELECT UTC_TIMESTAMP(6)", "postgresql": "SELECT clock_timestamp() AT TIME ZONE 'UTC'",
             "sqlite": "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"}[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(query)
        value = cursor.fetchone()[0]
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def assert_on_database_clock(now: datetime, before: datetime, after: datetime) -> None:
    assert now.tzinfo is not None, "USE_TZ is on: db_now is aware, like timezone.now()"
    assert before - TOLERANCE <= now <= after + TOLERANCE, (before, now, after)


def shift_local_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    real_time, real_now = time.time, timezone.now
    monkeypatch.setattr(time, "time", lambda: real_time() + seconds)
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=seconds))


def clock_queries(captured: CaptureQueriesContext) -> int:
    return sum(1 for q in captured.captured_queries if "UTC_TIMESTAMP" in q["sql"] or "clock_timestamp" in q["sql"])


def test_db_now_is_the_database_time_within_a_few_milliseconds() -> None:
    clock.db_now("default")  # the anchor
    time.sleep(0.5)  # the answer below is the anchor advanced by the monotonic clock
    before = database_time()
    now = clock.db_now("default")
    after = database_time()
    assert_on_database_clock(now, before, after)
    assert abs(clock.offset("default")) < 1.0, "this machine's clock and its database's agree"


def test_a_shifted_local_clock_does_not_change_db_now(monkeypatch: pytest.MonkeyPatch, not_sqlite: None) -> None:
    clock.db_now("default")
    shift_local_clock(monkeypatch, HOUR)  # the host's clock is set an hour ahead after the anchor was taken
    before = database_time()
    now = clock.db_now("default")
    after = database_time()
    assert_on_database_clock(now, before, after)
    clock.reset()  # and an hour-ahead clock from the start: measured, not read locally
    before = database_time()
    now = clock.db_now("default")
    after = database_time()
    assert_on_database_clock(now, before, after)
    assert abs(timezone.now() - now - timedelta(hours=1)) < timedelta(seconds=1)
    assert -HOUR - 1 < clock.offset("default") < -HOUR + 1


def test_sqlite_uses_the_local_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite reads the local clock")
    shift_local_clock(monkeypatch, HOUR)
    assert abs(clock.db_now("default") - timezone.now()) < timedelta(seconds=1)


def test_an_offset_over_a_second_is_logged_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                not_sqlite: None) -> None:
    shift_local_clock(monkeypatch, HOUR)
    monkeypatch.setattr(clock, "RESYNC_SECONDS", 0.0)
    with caplog.at_level(logging.WARNING, logger="django_meepo.clock"):
        clock.db_now("default")
        clock.db_now("default")  # measured again (the interval is 0), not logged again
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "this host's clock is 3600" in warnings[0], warnings
    assert "ahead of the database's" in warnings[0]


def test_it_measures_again_after_the_interval_and_on_a_clock_jump(monkeypatch: pytest.MonkeyPatch,
                                                                  not_sqlite: None) -> None:
    monkeypatch.setattr(clock, "RESYNC_SECONDS", 0.3)
    with CaptureQueriesContext(connection) as captured:
        clock.db_now("default")
        clock.db_now("default")
        assert clock_queries(captured) == 1, "within the interval the anchor serves"
        time.sleep(0.4)
        clock.db_now("default")
        assert clock_queries(captured) == 2, "after the interval it is measured again"
        shift_local_clock(monkeypatch, -HOUR)
        now = clock.db_now("default")
        assert clock_queries(captured) == 3, "a local clock jump makes it measure again"
        after = database_time()
    assert now <= after + TOLERANCE and now - timezone.now() > timedelta(minutes=59), "the database's time"


def test_a_failed_first_measurement_raises(monkeypatch: pytest.MonkeyPatch, not_sqlite: None) -> None:
    monkeypatch.setitem(clock.QUERIES, connection.vendor, "SELECT no_such_function_meepo()")
    with pytest.raises(DatabaseError):
        clock.db_now("default")
    assert Job.objects.count() == 0, "the caller's transaction is still usable (the query ran in a savepoint)"


def test_a_failed_remeasurement_keeps_the_anchor_and_logs_once(monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture,
                                                               not_sqlite: None) -> None:
    monkeypatch.setattr(clock, "RESYNC_SECONDS", 0.0)  # every call measures again
    monkeypatch.setattr(clock, "RETRY_SECONDS", 0.3)
    clock.db_now("default")
    monkeypatch.setitem(clock.QUERIES, connection.vendor, "SELECT no_such_function_meepo()")
    tries: list[str] = []
    measure = clock._measure
    monkeypatch.setattr(clock, "_measure", lambda using: tries.append(using) or measure(using))
    with caplog.at_level(logging.WARNING, logger="django_meepo.clock"):
        before = database_time()
        now = clock.db_now("default")
        clock.db_now("default")
        after = database_time()
        assert len(tries) == 1, "after a failure it waits RETRY_SECONDS before it queries again"
        time.sleep(0.4)
        clock.db_now("default")
        assert len(tries) == 2, "and then tries again"
    assert_on_database_clock(now, before, after)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "cannot read the database 'default'" in warnings[0], warnings
    assert Job.objects.count() == 0, "the caller's transaction is still usable"


def test_nothing_is_measured_in_a_broken_transaction(monkeypatch: pytest.MonkeyPatch, not_sqlite: None) -> None:
    shift_local_clock(monkeypatch, HOUR)
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        transaction.set_rollback(True)
        local = clock.db_now("default")  # no anchor: the local clock
        assert clock_queries(captured) == 0
    assert abs(local - timezone.now()) < timedelta(seconds=1)
    monkeypatch.setattr(clock, "RESYNC_SECONDS", 0.0)  # the anchor below is stale at once
    measured = clock.db_now("default")
    assert abs(measured + timedelta(hours=1) - timezone.now()) < timedelta(seconds=1), "outside it: measured"
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        transaction.set_rollback(True)
        kept = clock.db_now("default")  # stale anchor, broken transaction: the anchor, not a query
        assert clock_queries(captured) == 0
    assert abs(kept - measured) < timedelta(seconds=1)


def test_naive_utc_without_use_tz(settings: Any) -> None:
    settings.USE_TZ = False
    now = clock.db_now("default")
    assert now.tzinfo is None
    assert abs(now - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=1)


def test_threads_share_it(monkeypatch: pytest.MonkeyPatch, not_sqlite: None) -> None:
    monkeypatch.setattr(clock, "RESYNC_SECONDS", 0.01)  # threads measure again and again, each on its connection
    answers: list[datetime] = []

    def work() -> None:
        try:
            for _ in range(50):
                answers.append(clock.db_now("default"))
                time.sleep(0.002)
        finally:
            connections.close_all()

    before = database_time()
    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    after = database_time()
    assert len(answers) == 300
    assert all(before - TOLERANCE <= a <= after + TOLERANCE for a in answers), (before, min(answers), after)


def test_naive_local_time_without_use_tz_in_another_zone(settings: Any) -> None:
    # With USE_TZ off Django stores naive local times of TIME_ZONE: db_now must be one of them, like timezone.now().
    settings.USE_TZ = False
    settings.TIME_ZONE = "Asia/Tokyo"
    now = clock.db_now("default")
    assert now.tzinfo is None
    assert abs(now - timezone.now()) < timedelta(seconds=1), (now, timezone.now())
    assert abs(clock.offset("default")) < 1.0
