"""Periodic jobs against the real database and Redis: sweepers racing through simulated ticks, the missed
policy, the duplicate-key rollback, meepo_stats and the dashboard.

Time is driven through the sweeper's injectable ``now``; job rows still carry the database's real clock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connections
from django.test import override_settings
from django.urls import reverse

from django_meepo import Job, outbox
from django_meepo import schedule as sch
from django_meepo.dispatch import new_dispatcher
from django_meepo.dispatch.redis import queued_entries
from django_meepo.models import ScheduleTick
from django_meepo.registry import get_task
from django_meepo.sweeper import Sweeper

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"
# A simulated hour far from the real clock, aligned to the hour: ticks T0, T0+5m, …, T0+55m.
T0 = datetime(2031, 6, 2, 10, 0, tzinfo=UTC)


def scheduled(**entries: dict[str, object]) -> override_settings:
    return override_settings(MEEPO={**settings.MEEPO, "SCHEDULE": entries})


@pytest.fixture
def every_five(key_prefix: str) -> Iterator[None]:
    with scheduled(five={"task": "record", "cron": "*/5 * * * *", "json": {"from": "schedule"}}):
        yield


def sweeper(holder: str) -> Sweeper:
    return Sweeper([get_task("noop")], dispatcher=new_dispatcher(), using=DB, holder=holder)


def moments(start: datetime, end: datetime, step: float) -> list[datetime]:
    count = int((end - start).total_seconds() // step)
    return [start + timedelta(seconds=i * step) for i in range(count + 1)]


def ticks_of(name: str) -> list[tuple[datetime, int | None]]:
    return [(sch.aware(t), j) for t, j in ScheduleTick.objects.filter(name=name).order_by("tick")
            .values_list("tick", "job_id")]


def test_three_sweepers_racing_through_an_hour_push_exactly_one_job_per_tick(every_five, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    timeline = moments(T0 - timedelta(seconds=30), T0 + timedelta(minutes=59, seconds=59), 10)
    barrier = threading.Barrier(3)
    pushed: dict[str, int] = {}
    errors: list[BaseException] = []

    def drive(holder: str, s: Sweeper) -> None:
        total = 0
        try:
            for now in timeline:
                barrier.wait(timeout=60)  # all three sweep the same moment: they race for each tick
                total += s.tick(now=now).scheduled
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
            barrier.abort()
        finally:
            pushed[holder] = total
            connections.close_all()

    threads = [threading.Thread(target=drive, args=(f"sweeper-{i}", sweeper(f"sweeper-{i}"))) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    expected = [T0 + timedelta(minutes=5 * i) for i in range(12)]
    recorded = ticks_of("five")
    assert [t for t, _ in recorded] == expected, "the tick before T0 was before the schedule started: not made up"
    jobs = list(Job.objects.filter(task="record").order_by("id"))
    assert len(jobs) == 12 and sum(pushed.values()) == 12, pushed
    assert sorted(j for _, j in recorded) == [j.id for j in jobs], "each tick row names its own job"
    assert {j.payload_json()["from"] for j in jobs} == {"schedule"}
    outbox.flush()
    assert len(queued_entries(redis, key_prefix, "record")) == 12, "each job was dispatched once"


def test_a_tick_recorded_elsewhere_rolls_back_the_push(every_five, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    schedule = sch.get_schedule("five")
    assert sch.Scheduler(using=DB).fire(schedule, T0) == 1
    assert sch.Scheduler(using=DB).fire(schedule, T0) == 0, "the duplicate key: another process won"
    assert Job.objects.filter(task="record").count() == 1
    assert len(ticks_of("five")) == 1
    outbox.flush()
    assert len(queued_entries(redis, key_prefix, "record")) == 1, "the loser dispatched nothing"


def _after_downtime(missed: str) -> list[datetime]:
    with scheduled(five={"task": "record", "cron": "*/5 * * * *", "missed": missed}):
        before = sweeper("before")
        before.tick(now=T0 + timedelta(seconds=3))  # the T0 tick runs (on time), then every sweeper goes down
        assert [t for t, _ in ticks_of("five")] == [T0]
        back = sweeper("back")  # a new process, 3 h 17 min later: 39 ticks were missed
        back_at = T0 + timedelta(hours=3, minutes=17)
        back.tick(now=back_at)
        back.tick(now=back_at + timedelta(seconds=20))
        after_first = [t for t, _ in ticks_of("five")]
        back.tick(now=T0 + timedelta(hours=3, minutes=20, seconds=1))  # the next tick, on time
        assert [t for t, _ in ticks_of("five")] == [*after_first, T0 + timedelta(hours=3, minutes=20)]
        return after_first


def test_missed_latest_runs_the_latest_missed_tick_once(key_prefix) -> None:  # type: ignore[no-untyped-def]
    assert _after_downtime("latest") == [T0, T0 + timedelta(hours=3, minutes=15)]
    assert Job.objects.filter(task="record").count() == 3


def test_missed_skip_runs_only_future_ticks(key_prefix) -> None:  # type: ignore[no-untyped-def]
    assert _after_downtime("skip") == [T0]
    assert Job.objects.filter(task="record").count() == 2


def test_a_restart_does_not_run_a_tick_already_done(every_five) -> None:  # type: ignore[no-untyped-def]
    sweeper("first").tick(now=T0 + timedelta(seconds=2))
    sweeper("restarted").tick(now=T0 + timedelta(seconds=40))  # within the on-time window, but recorded
    assert len(ticks_of("five")) == 1 and Job.objects.filter(task="record").count() == 1


def test_nothing_due_reads_no_database(every_five, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    scheduler = sch.Scheduler(using=DB)
    scheduler.step(T0 + timedelta(seconds=1))
    with django_assert_num_queries(0):
        for second in range(2, 290, 7):
            assert scheduler.step(T0 + timedelta(seconds=second)) == 0


def test_an_unknown_task_writes_nothing(key_prefix) -> None:  # type: ignore[no-untyped-def]
    with scheduled(bad={"task": "no_such_task", "cron": "* * * * *"}):
        assert [s.name for s in sch.schedules()] == ["bad"]  # valid in form; E010 reports the task
        report = sweeper("s").tick(now=T0 + timedelta(seconds=1))
    assert report.scheduled == 0 and not ScheduleTick.objects.exists()


def test_meepo_stats_lists_each_schedule_with_its_last_and_next_tick(every_five) -> None:  # type: ignore[no-untyped-def]
    with scheduled(five={"task": "record", "cron": "*/5 * * * *"},
                   nightly={"task": "record", "cron": "0 3 * * *", "timezone": "Europe/Berlin", "missed": "skip"}):
        sch.Scheduler(using=DB).fire(sch.get_schedule("five"), T0)
        job_id = Job.objects.get(task="record").id
        out = StringIO()
        call_command("meepo_stats", stdout=out)
        text = out.getvalue()
        assert "schedules: 2" in text
        five = next(line for line in text.splitlines() if line.strip().startswith("five "))
        assert f"last=2031-06-02 10:00:00 UTC (job {job_id})" in five and "cron='*/5 * * * *'" in five
        nightly = next(line for line in text.splitlines() if line.strip().startswith("nightly "))
        assert "(Europe/Berlin, missed: skip) last=- next=" in nightly and " UTC" in nightly.split("next=")[1]
        out = StringIO()
        call_command("meepo_stats", "--json", stdout=out)
        data = {s["name"]: s for s in json.loads(out.getvalue())["schedules"]}
    assert data["five"]["last_tick"] == "2031-06-02T10:00:00+00:00" and data["five"]["last_job_id"] == job_id
    assert data["nightly"]["last_tick"] is None and data["nightly"]["next_tick"].endswith(("T01:00:00+00:00",
                                                                                           "T02:00:00+00:00"))


def test_the_dashboard_lists_the_schedules(admin_client, every_five) -> None:  # type: ignore[no-untyped-def]
    sch.Scheduler(using=DB).fire(sch.get_schedule("five"), T0)
    job_id = Job.objects.get(task="record").id
    page = admin_client.get(reverse("admin:django_meepo_job_dashboard")).content.decode()
    assert 'id="meepo-schedules"' in page
    block = page.split('id="meepo-schedules"')[1].split("</table>")[0]
    assert "<td>five</td>" in block and "2031-06-02 10:00:00" in block and f"record#{job_id}" in block


def test_no_schedule_no_block(admin_client, key_prefix) -> None:  # type: ignore[no-untyped-def]
    page = admin_client.get(reverse("admin:django_meepo_job_dashboard")).content.decode()
    assert 'id="meepo-schedules"' not in page


def test_a_database_error_leaves_the_tick_to_the_next_sweep_and_the_rest_of_the_tick_goes_on(  # type: ignore[no-untyped-def]
        every_five, monkeypatch, caplog) -> None:
    real = sch.last_ticks

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise DatabaseError("Table 'meepo_schedule_tick' doesn't exist")  # e.g. deployed before migrate

    monkeypatch.setattr(sch, "last_ticks", broken)
    s = sweeper("s")
    for second in (1, 2):
        report = s.tick(now=T0 + timedelta(seconds=second))
        assert report.scheduled == 0 and report.leading == 1, "the sweeper's own work went on"
    assert sum("schedules could not be run" in r.getMessage() for r in caplog.records) == 1, "logged once"
    monkeypatch.setattr(sch, "last_ticks", real)
    assert s.tick(now=T0 + timedelta(seconds=3)).scheduled == 1
    assert [t for t, _ in ticks_of("five")] == [T0]


def test_meepo_sweep_once_pushes_the_due_tick(key_prefix) -> None:  # type: ignore[no-untyped-def]
    with scheduled(every_second={"task": "record", "cron": "* * * * * *", "missed": "skip"}):
        out = StringIO()
        call_command("meepo_sweep", "--once", stdout=out)  # on the real clock: the tick of this second is on time
    assert "1 scheduled job(s) pushed" in out.getvalue()
    [(_, job_id)] = ticks_of("every_second")
    assert Job.objects.get(id=job_id).task == "record"
