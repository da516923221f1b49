"""Two `meepo_consume` processes while their Redis (a test-owned redis-server) stops and starts again empty."""

from __future__ import annotations

import pytest
from django.db.models import Count

from django_meepo import Job
from testproject.models import Run
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def finished(ids: list[int]) -> bool:
    return Job.objects.filter(id__in=ids, status__in=["done", "failed"]).count() == len(ids)


def test_worker_processes_fail_over_to_the_database_and_back(workers, private_redis) -> None:  # type: ignore[no-untyped-def]
    consumers = [workers.consume("record", "--parallel", "2") for _ in range(2)]
    before = [j.id for j in Job.objects.push_many("record", json=[{"sleep": 0.02} for _ in range(200)])]
    wait_until(lambda: Job.objects.filter(id__in=before, status="done").count() >= 50, timeout=60,
               message="a quarter of the first jobs")
    private_redis.stop()
    during = [Job.objects.push("record", json={}).id for _ in range(40)]  # every push succeeds
    wait_until(lambda: finished(during), timeout=90, message="jobs pushed while Redis is down, from the table")
    private_redis.start()
    for consumer in consumers:
        # The worker's own line: its sweeper's "Redis answers again; dispatching …" can come a probe earlier.
        wait_until(lambda c=consumer: "Redis answers again; fetching through Redis again" in c.output(), timeout=60,
                   message="each worker to switch back to Redis")
    after = [j.id for j in Job.objects.push_many("record", json=[{} for _ in range(100)])]
    ids = before + during + after
    wait_until(lambda: finished(ids), timeout=120, message="every job")
    assert set(Job.objects.filter(id__in=ids).values_list("status", flat=True)) == {"done"}
    runs = dict(Run.objects.filter(job_id__in=ids).values_list("job_id").annotate(n=Count("id")).order_by())
    assert runs == {i: 1 for i in ids}, "no worker was interrupted, so no job ran twice"
    for consumer in consumers:
        log = consumer.output()
        assert log.count("claiming jobs straight from the database") == 1, log
        assert log.count("Redis answers again; fetching through Redis again") == 1, log
        assert consumer.process is not None and consumer.process.poll() is None, log
