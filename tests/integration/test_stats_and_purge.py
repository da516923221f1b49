"""stats.collect's numbers, the purge (by command and by the sweeper's retention step) and their settings checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.utils import timezone

from django_meepo import purge, stats
from django_meepo.dispatch import new_dispatcher
from django_meepo.dispatch.redis import DEFAULT, HI, legacy_keys, queue_keys
from django_meepo.models import Attempt, Job, Lease, Worker
from django_meepo.registry import get_task
from django_meepo.sweeper import Sweeper

pytestmark = pytest.mark.django_db


def job(status: str = "todo", task: str = "record", **fields: object) -> Job:
    pushed = Job.objects.push("record", json={})
    Job.objects.filter(id=pushed.id).update(status=status, task=task, **fields)
    return Job.objects.get(id=pushed.id)


def test_counts_backlog_throughput_and_redis(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    job("todo", due_at=now - timedelta(seconds=120))
    job("todo", due_at=now + timedelta(hours=1))  # delayed: not due, not backlog
    job("done", finished_at=now - timedelta(seconds=30))
    job("done", finished_at=now - timedelta(minutes=30))
    job("failed", finished_at=now - timedelta(minutes=90))  # outside both windows
    job("zombie", task="other")
    job("done", task="retired-task")  # jobs of a task no longer declared are still counted
    redis.rpush(queue_keys(key_prefix, "record")[DEFAULT], "1:1")
    redis.zadd(queue_keys(key_prefix, "record")[HI], {"2:1": 1})
    redis.rpush(legacy_keys(key_prefix, "record")[-1], "3:1")  # an old band list not yet moved counts too
    snap = stats.collect(now=now)
    tasks = {t.name: t for t in snap.tasks}
    record = tasks["record"]
    assert record.counts == {"todo": 2, "doing": 0, "done": 2, "failed": 1, "zombie": 0, "cancelled": 0}
    assert record.oldest_due_seconds == pytest.approx(120, abs=1)
    assert (record.done_last_minute, record.done_last_hour, record.failed_last_hour) == (1, 2, 0)
    assert record.queued_in_redis == 3
    assert tasks["other"].counts["zombie"] == 1 and tasks["other"].oldest_due_seconds is None
    assert not tasks["retired-task"].declared and tasks["retired-task"].counts["done"] == 1
    assert tasks["manual"].total == 0  # declared, no jobs: listed all the same
    assert snap.totals == {"todo": 2, "doing": 0, "done": 3, "failed": 1, "zombie": 1, "cancelled": 0}
    assert snap.to_dict()["taken_at"] == now.isoformat()


def test_live_and_stale_workers_and_what_they_hold() -> None:
    now = timezone.now()
    lease = get_task("record").options.lease_timeout
    Worker.objects.create(id="live", hostname="h", pid=1, tasks="record", started_at=now, last_seen=now)
    Worker.objects.create(id="dead", hostname="h", pid=2, tasks="record", started_at=now,
                          last_seen=now - timedelta(seconds=lease + 1))
    held = [job("doing", worker="live") for _ in range(2)]
    orphan = job("doing", worker="dead")
    lost = job("doing", worker="vanished")
    snap = stats.collect(now=now, redis=False)
    workers = {w.id: w for w in snap.workers}
    assert workers["live"].alive and not workers["dead"].alive
    assert [j.id for j in workers["live"].jobs] == [h.id for h in held] and workers["live"].holding == 2
    assert {j.id for j in snap.orphans} == {orphan.id, lost.id}
    assert [w.id for w in snap.live_workers] == ["live"]


def test_a_worker_that_has_not_reported_yet_says_so() -> None:
    from django_meepo.management.commands.meepo_stats import table

    now = timezone.now()
    Worker.objects.create(id="fresh", hostname="h", pid=1, tasks="record", started_at=now, last_seen=now)
    Worker.objects.create(id="busy", hostname="h", pid=2, tasks="record", started_at=now - timedelta(seconds=5),
                          last_seen=now, processed=7, failed=1)
    snap = stats.collect(now=now, redis=False)
    text = table(snap)
    assert "fresh [alive] tasks=record processed=? failed=? (no report yet)" in text, text
    assert "busy [alive] tasks=record processed=7 failed=1" in text, text
    assert {w["id"]: w["reported"] for w in snap.to_dict()["workers"]} == {"fresh": False, "busy": True}


def test_purge_keeps_a_job_that_is_no_longer_finished() -> None:
    old = timezone.now() - timedelta(days=10)
    gone, kept = job("done", finished_at=old), job("failed", finished_at=old)
    Attempt.objects.create(job=kept, number=1, finished_at=old, outcome="failed")
    selection = purge.finished_before(purge.cutoff_for(7))
    Job.objects.filter(id=kept.id).update(status="todo", finished_at=None)  # repushed meanwhile
    jobs, attempts = purge.delete_jobs(selection.filter(id__in=[gone.id, kept.id]))
    assert (jobs, attempts) == (1, 0)
    assert list(Job.objects.values_list("id", flat=True)) == [kept.id]
    assert Attempt.objects.filter(job_id=kept.id).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_purges_by_retention(settings) -> None:  # type: ignore[no-untyped-def]
    old = timezone.now() - timedelta(days=3)
    expired = [job("done", finished_at=old) for _ in range(3)]
    recent = job("failed", finished_at=timezone.now() - timedelta(hours=1))
    sweeper = Sweeper([get_task("record")], dispatcher=new_dispatcher(), using="default", holder="test-sweeper")
    assert sweeper.tick().purged == 0  # no RETENTION_DAYS: nothing is ever deleted
    assert Job.objects.count() == 4
    settings.MEEPO = {**settings.MEEPO, "RETENTION_DAYS": 2}
    report = sweeper.tick()
    assert report.purged == 3
    assert list(Job.objects.values_list("id", flat=True)) == [recent.id]
    assert Lease.objects.get(name="purger").holder == "test-sweeper"
    other = Sweeper([get_task("record")], dispatcher=new_dispatcher(), using="default", holder="standby")
    job("done", finished_at=old)
    assert other.tick().purged == 0  # one purger at a time
    assert not Job.objects.filter(id__in=[e.id for e in expired]).exists()


@pytest.mark.parametrize("value", [0, -1, "7", True, float("nan")])
def test_retention_setting_is_checked(settings, value) -> None:  # type: ignore[no-untyped-def]
    settings.MEEPO = {**settings.MEEPO, "RETENTION_DAYS": value}
    errors = [e for e in run_checks() if e.id == "meepo.E001"]
    assert any("RETENTION_DAYS" in e.msg for e in errors)


@pytest.mark.parametrize("value", [None, 7, 0.5])
def test_good_retention_settings_pass(settings, value) -> None:  # type: ignore[no-untyped-def]
    settings.MEEPO = {**settings.MEEPO, "RETENTION_DAYS": value}
    assert not [e for e in run_checks() if e.id.startswith("meepo.E")]


def test_admin_needs_admin_actions_installed(settings) -> None:  # type: ignore[no-untyped-def]
    from django_meepo.admin.checks import check_admin_actions

    assert check_admin_actions() == []
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "admin_actions"]
    [error] = check_admin_actions()
    assert error.id == "meepo.E008"
