"""Two tasks on two tables (meepo_job and t_my_job_0831, tables.py), real `meepo_consume` processes, faults:
Redis flushed mid-run and a worker SIGKILLed mid-run lose nothing, and no job that did not begin runs twice."""

from __future__ import annotations

import pytest
from django.db.models import Count

from django_meepo import Job
from testproject.models import OwnJob, Run
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def finished() -> bool:
    return (Job.objects.exclude(status__in=["done", "failed"]).count() == 0
            and OwnJob.objects.exclude(status__in=["done", "failed"]).count() == 0)


def done_count() -> int:
    return Job.objects.filter(status="done").count() + OwnJob.objects.filter(status="done").count()


def test_redis_flushed_and_a_worker_killed_with_two_tables(workers, private_redis) -> None:  # type: ignore[no-untyped-def]
    shared = Job.objects.push_many("record", json=[{"sleep": 0.02} for _ in range(300)])
    own = OwnJob.objects.push_many("record_own", json=[{"sleep": 0.02} for _ in range(300)])
    doomed = workers.consume("record", "record_own", "--parallel", "3")
    workers.consume("record", "record_own", "--parallel", "3")
    wait_until(lambda: done_count() >= 120, timeout=60, message="20 % done")
    private_redis.client().flushall()
    wait_until(lambda: done_count() >= 300, timeout=60, message="half done after the flush")
    doomed.kill()
    wait_until(finished, timeout=120, message="every job of both tables after the flush and the kill")
    assert set(Job.objects.values_list("status", flat=True)) == {"done"}
    assert set(OwnJob.objects.values_list("status", flat=True)) == {"done"}
    runs = {(r["task"], r["job_id"]): r["n"] for r in Run.objects.values("task", "job_id").annotate(n=Count("id"))
            .order_by()}
    assert set(runs) == ({("record", j.id) for j in shared} | {("record_own", j.id) for j in own}), "none lost"
    again = {k: n for k, n in runs.items() if n > 1}
    # A run cut short by the kill runs again (its lease expired); that is a rescue, counted on its row.
    rescued = ({("record", i) for i in Job.objects.filter(rescues__gt=0).values_list("id", flat=True)}
               | {("record_own", i) for i in OwnJob.objects.filter(rescues__gt=0).values_list("id", flat=True)})
    assert set(again) <= rescued, f"ran twice without having been rescued: {sorted(set(again) - rescued)[:10]}"
