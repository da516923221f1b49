"""Two `meepo_consume` processes on the database dispatcher (no Redis): every job runs exactly once."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db.models import Count
from django.test import override_settings

from django_meepo import Job
from django_meepo.models import Attempt
from testproject.models import Run
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
JOBS = int(os.environ.get("MEEPO_TEST_DB_DISPATCH_JOBS", "3000"))


def test_two_worker_processes_never_claim_the_same_job(workers) -> None:  # type: ignore[no-untyped-def]
    with override_settings(MEEPO={**settings.MEEPO, "DISPATCH": "database"}):
        ids = [j.id for j in Job.objects.push_many("record", json=[{} for _ in range(JOBS)])]
    workers.consume("record", "--parallel", "4", MEEPO_DISPATCH="database", REDIS_URL="redis://127.0.0.1:1/0")
    workers.consume("record", "--parallel", "4", MEEPO_DISPATCH="database", REDIS_URL="redis://127.0.0.1:1/0")
    jobs = Job.objects.filter(task="record")
    wait_until(lambda: jobs.filter(status__in=["done", "failed"]).count() == JOBS, timeout=600, interval=0.5,
               message=f"{JOBS} jobs on the database dispatcher")
    assert jobs.count() == JOBS and set(jobs.values_list("status", flat=True)) == {"done"}
    again = list(jobs.exclude(attempts=1, rescues=0).values("id", "cid", "attempts", "rescues", "worker")[:20])
    history = list(Attempt.objects.filter(job_id__in=[j["id"] for j in again])
                   .values_list("job_id", "number", "worker", "outcome", "error")[:40])
    warnings = [line for w in workers.started for line in w.output().splitlines() if "WARNING" in line][:20]
    assert not again, f"jobs claimed more than once: {again}; their attempts: {history}; the workers said: {warnings}"
    runs = dict(Run.objects.values_list("job_id").annotate(n=Count("id")).order_by())
    assert runs == {i: 1 for i in ids}, "every job ran exactly once"
    assert jobs.values("worker").distinct().count() == 2, "both workers took part"
