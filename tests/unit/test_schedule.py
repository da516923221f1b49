"""schedule.py without services: parsing and validation, next/latest tick, DST in Europe/Berlin, the missed policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import override_settings

from django_meepo import schedule as sch
from django_meepo.checks import check_settings

BERLIN = "Europe/Berlin"


def make(cron: str, zone: str = "UTC", **extra: object) -> sch.Schedule:
    schedule, problems = sch.parse("s", {"task": "record", "cron": cron, "timezone": zone, **extra})
    assert problems == [] and schedule is not None
    return schedule


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def ticks(schedule: sch.Schedule, start: datetime, end: datetime) -> list[datetime]:
    found, moment = [], start
    while (nxt := schedule.next_after(moment)) is not None and nxt <= end:
        found.append(nxt)
        moment = nxt
    return found


def berlin(moments: list[datetime]) -> list[str]:
    return [m.astimezone(ZoneInfo(BERLIN)).strftime("%H:%M %Z") for m in moments]


# -- next / latest
def test_next_is_strictly_after_and_latest_is_at_or_before() -> None:
    s = make("*/5 * * * *")
    assert s.next_after(utc(2026, 1, 1, 10, 0)) == utc(2026, 1, 1, 10, 5)
    assert s.next_after(utc(2026, 1, 1, 10, 4, 59)) == utc(2026, 1, 1, 10, 5)
    assert s.latest_at(utc(2026, 1, 1, 10, 5)) == utc(2026, 1, 1, 10, 5)
    assert s.latest_at(utc(2026, 1, 1, 10, 5).replace(microsecond=500)) == utc(2026, 1, 1, 10, 5)
    assert s.latest_at(utc(2026, 1, 1, 10, 9, 59)) == utc(2026, 1, 1, 10, 5)
    assert len(ticks(s, utc(2026, 1, 1, 10, 0), utc(2026, 1, 1, 11, 0))) == 12


def test_ticks_are_computed_in_the_schedules_zone() -> None:
    s = make("0 3 * * *", BERLIN)
    assert s.next_after(utc(2026, 1, 10, 12)) == utc(2026, 1, 11, 2)  # 03:00 CET
    assert s.next_after(utc(2026, 7, 10, 12)) == utc(2026, 7, 11, 1)  # 03:00 CEST


def test_the_default_zone_is_time_zone() -> None:
    with override_settings(TIME_ZONE="America/New_York"):
        schedule, _ = sch.parse("s", {"task": "record", "cron": "0 3 * * *"})
    assert schedule is not None and schedule.zone == ZoneInfo("America/New_York")
    assert schedule.missed == "latest" and schedule.payload == b"" and schedule.priority == 0


# -- DST, Europe/Berlin: 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET
SPRING = (utc(2026, 3, 28, 22), utc(2026, 3, 29, 4))
AUTUMN = (utc(2026, 10, 24, 22), utc(2026, 10, 25, 4))


def test_spring_a_fixed_time_in_the_skipped_hour_runs_once_at_the_first_valid_minute_after() -> None:
    assert berlin(ticks(make("30 2 * * *", BERLIN), *SPRING)) == ["03:00 CEST"]
    assert berlin(ticks(make("0 3 * * *", BERLIN), *SPRING)) == ["03:00 CEST"]


def test_autumn_a_fixed_time_in_the_repeated_hour_runs_once_at_its_first_occurrence() -> None:
    assert berlin(ticks(make("30 2 * * *", BERLIN), *AUTUMN)) == ["02:30 CEST"]


def test_interval_expressions_follow_elapsed_time_across_dst() -> None:
    spring = ticks(make("*/30 * * * *", BERLIN), utc(2026, 3, 29, 0), utc(2026, 3, 29, 2))
    assert berlin(spring) == ["01:30 CET", "03:00 CEST", "03:30 CEST", "04:00 CEST"]  # no 02:00, 02:30
    autumn = ticks(make("*/30 * * * *", BERLIN), utc(2026, 10, 24, 23, 15), utc(2026, 10, 25, 1, 45))
    assert berlin(autumn) == ["01:30 CEST", "02:00 CEST", "02:30 CEST", "02:00 CET", "02:30 CET"]
    assert len(set(autumn)) == len(autumn), "each repeated wall-clock time is its own UTC tick"


def test_latest_agrees_with_next_across_dst() -> None:
    for cron in ("30 2 * * *", "*/30 * * * *", "0 * * * *"):
        s = make(cron, BERLIN)
        for start, end in (SPRING, AUTUMN):
            for tick in ticks(s, start, end):
                assert s.latest_at(tick) == tick
                assert s.latest_at(tick + timedelta(seconds=59)) == tick


# -- bad input: each problem named, with its check id
@pytest.mark.parametrize(("entry", "needle"), [
    ({"task": "record", "cron": "61 * * * *"}, "not a valid cron expression"),
    ({"task": "record", "cron": "* * *"}, "not a valid cron expression"),
    ({"task": "record", "cron": 5}, "must be a cron expression"),
    ({"task": "record", "cron": "* * * * *", "timezone": "Mars/Olympus"}, "'Mars/Olympus' is not a known time zone"),
    ({"task": "record", "cron": "* * * * *", "missed": "all"}, "['missed'] must be 'latest' or 'skip'"),
    ({"task": "record", "cron": "* * * * *", "json": {1, 2}}, "not JSON-serialisable"),
    ({"task": "record", "cron": "* * * * *", "priority": 101}, "['priority'] must be an integer"),
    ({"task": "record", "cron": "* * * * *", "every": 5}, "unknown key 'every'"),
    ({"cron": "* * * * *"}, "lacks 'task'"),
    ({"task": "record"}, "lacks 'cron'"),
    ("0 3 * * *", "must be a dict"),
])
def test_bad_entries_are_named(entry: object, needle: str) -> None:
    schedule, problems = sch.parse("nightly", entry)
    assert schedule is None
    assert [p.id for p in problems] == ["meepo.E009"]
    assert needle in problems[0].message and "MEEPO['SCHEDULE']['nightly']" in problems[0].message


def test_bad_names_are_refused() -> None:
    for name in ("", "two words", "x" * 101, 3):
        assert sch.parse(name, {"task": "record", "cron": "* * * * *"})[1][0].id == "meepo.E009"


def _check_ids(schedule: object) -> list[str]:
    with override_settings(MEEPO={**settings.MEEPO, "SCHEDULE": schedule}):
        return [e.id for e in check_settings() if e.id in ("meepo.E009", "meepo.E010", "meepo.E011")]


def test_system_checks_report_schedule_problems_with_ids() -> None:
    assert _check_ids({"ok": {"task": "record", "cron": "*/5 * * * *"}}) == []
    assert _check_ids({"x": {"task": "no_such_task", "cron": "*/5 * * * *"}}) == ["meepo.E010"]
    assert _check_ids({"x": {"task": "record", "cron": "bad"}}) == ["meepo.E009"]
    assert _check_ids(["not", "a", "dict"]) == ["meepo.E009"]
    with override_settings(MEEPO={**settings.MEEPO, "SCHEDULE": {"x": {"task": "no_such_task", "cron": "bad"}}}):
        assert sch.schedules() == [], "an invalid schedule never runs"


def test_without_cronsim_a_check_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sch, "cronsim_missing", lambda: True)
    with override_settings(MEEPO={**settings.MEEPO, "SCHEDULE": {"x": {"task": "record", "cron": "* * * * *"}}}):
        errors = [e for e in check_settings() if e.id == "meepo.E011"]
        assert len(errors) == 1 and errors[0].hint == "pip install django-meepo[cron]"
        assert sch.schedules() == []
    assert _check_ids({}) == [], "no schedule, no need for cronsim"


# -- the missed policy, decided without the database
@pytest.mark.parametrize(("missed", "started", "last", "late", "runs"), [
    ("latest", False, None, 10, True),  # new schedule, on time
    ("latest", False, None, 3600, False),  # new schedule: never makes up ticks from before it existed
    ("latest", False, "before", 3600, True),  # downtime: the latest missed tick runs once
    ("latest", False, "same", 10, False),  # another process already did it
    ("latest", True, None, 3600, True),  # a stalled sweeper catches up once
    ("skip", False, "before", 10, True),
    ("skip", False, "before", 3600, False),  # downtime: skipped
    ("skip", True, None, 3600, False),
    ("skip", True, None, sch.ON_TIME_SECONDS, True),
])
def test_should_run(missed: str, started: bool, last: str | None, late: float, runs: bool) -> None:
    s = make("0 * * * *", missed=missed)
    tick = utc(2026, 5, 1, 12)
    state = sch._State(s, next_due=tick if started else None)
    recorded = {None: None, "before": tick - timedelta(hours=5), "same": tick}[last]
    assert sch.Scheduler._should_run(state, tick, tick + timedelta(seconds=late), recorded) is runs


def test_without_use_tz_ticks_are_stored_as_naive_local_time() -> None:
    tick = utc(2026, 7, 1, 1, 0)
    with override_settings(USE_TZ=False, TIME_ZONE=BERLIN):
        assert sch.stored(tick) == datetime(2026, 7, 1, 3, 0)  # naive CEST, as Django stores it then
        assert sch.aware(datetime(2026, 7, 1, 3, 0)) == tick
    assert sch.stored(tick) is tick and sch.aware(tick) == tick


# -- @periodic
@pytest.fixture
def no_decorated() -> object:
    saved = dict(sch._decorated)
    sch._decorated.clear()
    yield
    sch._decorated.clear()
    sch._decorated.update(saved)


def test_periodic_declares_a_schedule_that_settings_may_replace(no_decorated) -> None:  # type: ignore[no-untyped-def]
    from django_meepo import periodic
    from django_meepo.registry import get_task

    record = get_task("record")
    assert periodic("*/5 * * * *", json={"n": 1}, timezone=BERLIN)(record) is record
    [found] = sch.schedules()
    assert (found.name, found.task, found.cron, str(found.zone), found.payload) == (
        "record", "record", "*/5 * * * *", BERLIN, b'{"n":1}')
    with override_settings(MEEPO={**settings.MEEPO, "SCHEDULE": {"record": {"task": "record", "cron": "0 3 * * *"}}}):
        assert [s.cron for s in sch.schedules()] == ["0 3 * * *"]
    periodic("0 4 * * *", name="record-daily", missed="skip")(record)
    assert sorted(s.name for s in sch.schedules()) == ["record", "record-daily"]


def test_periodic_refuses_bad_input_and_declares_nothing(no_decorated) -> None:  # type: ignore[no-untyped-def]
    from django_meepo import ConfigurationError, periodic
    from django_meepo.registry import get_task

    with pytest.raises(ConfigurationError, match=r"@periodic schedule 'record'\['cron'\] .*not a valid cron.*"
                                                 r"\['timezone'\] 'Nowhere/Land' is not a known time zone"):
        periodic("99 * * * *", timezone="Nowhere/Land")(get_task("record"))
    with pytest.raises(ConfigurationError, match=r"\['missed'\] must be 'latest' or 'skip'"):
        periodic("* * * * *", missed="never")(get_task("record"))
    with pytest.raises(TypeError, match="above @task"):
        periodic("* * * * *")(lambda job: None)  # type: ignore[arg-type]
    assert sch._decorated == {} and sch.schedules() == []
