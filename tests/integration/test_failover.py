"""Failover in a worker thread: Redis (a test-owned redis-server) stops while jobs flow, then starts again empty."""

from __future__ import annotations

import logging

import pytest
from django.db.models import Count

from django_meepo import Job
from django_meepo.dispatch.failover import FailoverDispatcher
from testproject.models import Run
from tests.support.inprocess import running_worker
from tests.support.services import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

DOWN = "claiming jobs straight from the database"
BACK = "Redis answers again"


def finished(ids: list[int]) -> bool:
    return Job.objects.filter(id__in=ids, status__in=["done", "failed"]).count() == len(ids)


def done(ids: list[int]) -> int:
    return Job.objects.filter(id__in=ids, status="done").count()


def said(caplog: pytest.LogCaptureFixture, words: str) -> int:
    return sum(words in r.getMessage() for r in caplog.records)


def test_a_worker_fails_over_to_the_database_and_back(private_redis, caplog) -> None:  # type: ignore[no-untyped-def]
    before = [j.id for j in Job.objects.push_many("record", json=[{"sleep": 0.01} for _ in range(150)])]
    with caplog.at_level(logging.WARNING, logger="django_meepo"), \
            running_worker("record", parallel=4) as worker:
        dispatcher = worker.dispatcher
        assert isinstance(dispatcher, FailoverDispatcher)
        wait_until(lambda: done(before) >= 40, timeout=60, message="a quarter of the first jobs")
        private_redis.stop()
        during = [Job.objects.push("record", json={}).id for _ in range(30)]  # every push succeeds
        wait_until(lambda: finished(during), timeout=60, message="jobs pushed while Redis is down, from the table")
        assert dispatcher.using_fallback
        private_redis.start()  # empty: its epoch is gone, the sweeper dispatches everything due again
        wait_until(lambda: not dispatcher.using_fallback, timeout=30, message="the worker to switch back")
        after = [j.id for j in Job.objects.push_many("record", json=[{} for _ in range(50)])]
        wait_until(lambda: finished(before + during + after), timeout=90, message="every job")
        assert not dispatcher.using_fallback
    ids = before + during + after
    assert set(Job.objects.filter(id__in=ids).values_list("status", flat=True)) == {"done"}
    runs = dict(Run.objects.filter(job_id__in=ids).values_list("job_id").annotate(n=Count("id")).order_by())
    assert runs == {i: 1 for i in ids}, "no job was lost or run twice by the switches"
    assert (said(caplog, DOWN), said(caplog, BACK)) == (1, 1), "each switch is logged once, not once per job"
