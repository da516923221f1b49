"""Failover: Redis (a test-owned redis-server) stops while jobs flow, then starts again empty, or with its data."""

from __future__ import annotations

import logging

import pytest
from django.db.models import Count

from django_meepo import Job, outbox
from django_meepo import statemachine as sm
from django_meepo.dispatch import new_dispatcher, redis_dispatcher
from django_meepo.dispatch.failover import FailoverDispatcher
from django_meepo.registry import get_task
from django_meepo.sweeper import Sweeper, SweepReport
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


def test_redis_back_with_its_data_still_gets_the_jobs_pushed_while_it_was_down(private_redis, key_prefix,  # type: ignore[no-untyped-def]
                                                                               caplog) -> None:
    """Redis restarts with what it held (its epoch too), so nothing triggers a full re-dispatch: the jobs pushed
    during the outage reach it only because the sweeper asks Redis what it lacks (``missing``) and sends those."""
    record = get_task("record")
    sweeper = Sweeper([record], dispatcher=new_dispatcher(), using="default", holder="test-sweeper")
    redis = redis_dispatcher()
    held = [j.id for j in Job.objects.push_many("record", json=[{} for _ in range(20)])]
    assert outbox.flush(timeout=30), "the outbox's thread to dispatch them"  # in Redis now (a loaded CI run's
    first = sweeper.tick()  # sweeper came first otherwise, and found all 20 missing)
    assert (first.leading, first.full_scan, first.redispatched) == (1, True, 0), "Redis holds them all"

    private_redis.stop(keep_data=True)
    with caplog.at_level(logging.WARNING, logger="django_meepo"):
        during = [Job.objects.push("record", json={}).id for _ in range(15)]  # every push succeeds
    outbox.flush()  # the dispatch is tried on the outbox's thread, after the commit
    assert said(caplog, "not dispatched") >= 1
    assert sweeper.tick().redispatched == 0, "nothing can be dispatched while Redis is down"
    private_redis.start()  # from its dump: the entries it held, their record and its epoch

    assert redis.length("record", key_prefix) == len(held), "Redis came back with its entries"
    assert redis.missing("record", key_prefix, [sm.Ref(i, 1) for i in held]) == []
    assert set(Job.objects.filter(id__in=during).values_list("status", flat=True)) == {"todo"}
    reports: list[SweepReport] = []

    def swept_what_redis_lacks() -> bool:
        reports.append(sweeper.tick())
        return sum(r.redispatched for r in reports) >= len(during)

    wait_until(swept_what_redis_lacks, timeout=30, interval=0.2, message="the sweeper to dispatch what Redis lacks")
    assert not any(r.full_scan for r in reports), "Redis kept its data: no full re-dispatch"
    assert sum(r.redispatched for r in reports) == len(during), "only what Redis lacked, each once"
    assert redis.missing("record", key_prefix, [sm.Ref(i, 1) for i in held + during]) == []
    assert redis.length("record", key_prefix) == len(held) + len(during)

    # A worker that fetches through Redis alone (no sweeper of its own, Redis up all along: no table polling)
    # runs every job, so the ones pushed during the outage did reach Redis.
    with running_worker("record", parallel=4, sweep=False) as worker:
        assert isinstance(worker.dispatcher, FailoverDispatcher)
        wait_until(lambda: finished(held + during), timeout=60, message="every job")
        assert not worker.dispatcher.using_fallback
    ids = held + during
    assert set(Job.objects.filter(id__in=ids).values_list("status", flat=True)) == {"done"}
    runs = dict(Run.objects.filter(job_id__in=ids).values_list("job_id").annotate(n=Count("id")).order_by())
    assert runs == {i: 1 for i in ids}, "no job was lost or run twice"
    redis.close()
