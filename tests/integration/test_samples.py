"""samples.py: the per-minute samples the leading sweeper writes for the dashboard's charts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from django_meepo import samples
from django_meepo.clock import db_now
from django_meepo.dispatch import new_dispatcher
from django_meepo.models import Job, StatSample
from django_meepo.registry import get_task
from django_meepo.samples import Sampler, due_minute, record
from django_meepo.sweeper import Sweeper

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"


def job(task: str = "record", status: str = "todo", **fields: Any) -> Job:
    """A job put straight into a state (set-up only)."""
    made = Job.objects.push(task, json={})
    Job.objects.filter(id=made.id).update(status=status, **fields)
    return Job.objects.get(id=made.id)


def finished(minute: datetime, second: int, status: str, waited: float, task: str = "record") -> Job:
    """A job that finished ``second`` s into ``minute``, claimed ``waited`` s after it was due."""
    end = minute + timedelta(seconds=second)
    started = end - timedelta(seconds=0.5)
    return job(task, status, finished_at=end, started_at=started, due_at=started - timedelta(seconds=waited))


def sweeper(holder: str, *names: str) -> Sweeper:
    return Sweeper([get_task(n) for n in names], dispatcher=new_dispatcher(), using=DB, holder=holder)


def test_a_sample_counts_the_minute_from_the_rows() -> None:
    now = db_now(DB)
    minute = due_minute(now)
    waits = [1.0, 2.0, 3.0, 4.0, 10.0]
    for n, waited in enumerate(waits):
        finished(minute, 5 + n, "done", waited)
    finished(minute, 40, "failed", 20.0)
    finished(minute - timedelta(minutes=1), 30, "done", 99.0)  # the minute before: not counted
    finished(minute + timedelta(minutes=1), 1, "done", 99.0)  # the minute after (it began 5 s ago or more)
    finished(minute, 10, "done", 50.0, task="other")  # another task
    oldest = job(due_at=now - timedelta(seconds=300))
    job(due_at=now - timedelta(seconds=10))
    job(due_at=now + timedelta(hours=1))  # not due: not in the depth
    job(status="doing", due_at=now - timedelta(hours=2))  # not todo
    assert record("record", minute, now, using=DB)
    s = StatSample.objects.get(task="record", minute=minute)
    assert (s.done, s.failed, s.depth) == (5, 1, 2)
    assert s.oldest_due_seconds == pytest.approx((now - oldest.due_at).total_seconds(), abs=0.01)
    # nearest rank over the six waits 1, 2, 3, 4, 10, 20: p50 the 3rd, p95 the 6th
    assert s.latency_p50 == pytest.approx(3.0, abs=0.01)
    assert s.latency_p95 == pytest.approx(20.0, abs=0.01)


def test_an_empty_minute_is_a_sample_of_zeros() -> None:
    now = db_now(DB)
    assert record("record", due_minute(now), now, using=DB)
    s = StatSample.objects.get()
    assert (s.done, s.failed, s.depth, s.oldest_due_seconds, s.latency_p50, s.latency_p95) == (0, 0, 0, None,
                                                                                              None, None)


def test_a_second_write_of_a_minute_writes_nothing() -> None:
    now = db_now(DB)
    minute = due_minute(now)
    finished(minute, 3, "done", 1.0)
    assert record("record", minute, now, using=DB)
    finished(minute, 4, "done", 1.0)
    assert not record("record", minute, now, using=DB)  # a retry, or a second leader
    assert not Sampler(using=DB).step(["record"], now)  # a restarted sweeper
    assert StatSample.objects.get(task="record", minute=minute).done == 1  # the first write stands


def test_a_lost_race_on_the_unique_key_is_not_an_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two leaders both found no sample, then both INSERT: the UNIQUE (task, minute) refuses the second."""
    now = db_now(DB)
    minute = due_minute(now)
    real_measure = samples.measure

    def measure_then_lose_the_race(task: str, at: datetime, when: datetime, *, using: str) -> StatSample:
        sample = real_measure(task, at, when, using=using)
        StatSample.objects.create(task=task, minute=at, done=42, created_at=when)  # the other leader's write
        return sample

    monkeypatch.setattr(samples, "measure", measure_then_lose_the_race)
    assert not record("record", minute, now, using=DB)
    assert list(StatSample.objects.values_list("task", "done")) == [("record", 42)]


def test_only_the_leading_sweeper_samples_once_a_minute() -> None:
    # Mid-minute, so that now and now + 1 s have the same due minute (at hh:mm:04.9 + 1 s, with SAMPLE_LAG,
    # they did not: a CI run failed on it).
    now = db_now(DB).replace(second=30, microsecond=0)
    leader, standby = sweeper("leader", "record", "other"), sweeper("standby", "record", "other")
    assert leader.tick(now=now).sampled == 2
    assert standby.tick(now=now).sampled == 0  # it leads nothing
    assert leader.tick(now=now + timedelta(seconds=1)).sampled == 0  # same minute (or already written)
    assert sorted(StatSample.objects.values_list("task", flat=True)) == ["other", "record"]
    later = now + timedelta(minutes=1)
    assert leader.tick(now=later).sampled == 2
    assert StatSample.objects.count() == 4
    assert set(StatSample.objects.values_list("minute", flat=True)) == {due_minute(now), due_minute(later)}


def test_samples_are_pruned_with_retention_days(settings) -> None:  # type: ignore[no-untyped-def]
    now = db_now(DB)
    old = StatSample.objects.create(task="record", minute=due_minute(now) - timedelta(days=3), created_at=now)
    recent = StatSample.objects.create(task="record", minute=due_minute(now) - timedelta(days=1), created_at=now)
    sampler = Sampler(using=DB)
    sampler.step(["record"], now)
    assert StatSample.objects.filter(id=old.id).exists()  # no RETENTION_DAYS: kept
    settings.MEEPO = {**settings.MEEPO, "RETENTION_DAYS": 2}
    sampler.step(["record"], now + timedelta(minutes=2))
    assert not StatSample.objects.filter(id=old.id).exists()
    assert StatSample.objects.filter(id=recent.id).exists()
    assert StatSample.objects.filter(minute=due_minute(now + timedelta(minutes=2))).exists()
