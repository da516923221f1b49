"""One bad outcome must not wedge or kill a worker's committer (issue 9, window 2), nor its monitor.

A real ``meepo_consume`` runs a job whose result or error the database would refuse as it is: over
``max_allowed_packet``, with NUL (PostgreSQL), with a lone surrogate (every driver). The poison job ends in a
recorded state, the next job is still recorded by the same worker, and nothing runs twice.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest
from django.db.models import Count

from django_meepo import Job
from django_meepo.models import Attempt
from testproject.jobs_poison import HUGE_BYTES
from testproject.models import Run
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MAX_RESULT_BYTES = 1_048_576


def runs(ids: list[int]) -> dict[int, int]:
    return dict(Run.objects.filter(job_id__in=ids).values_list("job_id").annotate(n=Count("id")).order_by())


def _huge(job: Job) -> None:
    assert job.result is not None
    assert len(job.result.encode("utf-8")) <= MAX_RESULT_BYTES
    head, marker = job.result.rsplit("\n", 1)
    assert set(head) == {"h"} and len(head) > MAX_RESULT_BYTES - 100
    assert marker == f"[… {HUGE_BYTES - len(head)} bytes cut by django-meepo: over MAX_RESULT_BYTES]"


def _error(expected: str) -> Callable[[Job], None]:
    def check(job: Job) -> None:
        assert job.result is None
        assert f"RuntimeError: {expected}" in job.last_error, job.last_error
        attempt = Attempt.objects.get(job_id=job.id)
        assert attempt.error_class == "builtins.RuntimeError" and f"RuntimeError: {expected}" in attempt.error

    return check


def _result(expected: str) -> Callable[[Job], None]:
    def check(job: Job) -> None:
        assert job.result == expected

    return check


POISON: dict[str, tuple[str, Callable[[Job], None]]] = {
    "huge": ("done", _huge),
    "surrogate": ("done", _result("before \\ud800 after")),
    "nul": ("done", _result("before  after")),
    "nul_error": ("failed", _error("planned failure with a NUL  in its message")),
    "surrogate_error": ("failed", _error("planned failure with a lone surrogate \\udcff in its message")),
}


@pytest.mark.parametrize("kind", list(POISON))
def test_a_poison_outcome_is_recorded_and_the_worker_goes_on(workers, redis, key_prefix, kind) -> None:  # type: ignore[no-untyped-def]
    worker = workers.consume("poison")
    bad = Job.objects.push("poison", json={"kind": kind})
    wait_until(lambda: Run.objects.filter(job_id=bad.id).exists(), timeout=30, message="the poison job to run")
    good = Job.objects.push("poison", json={"kind": "ok"})
    wait_until(lambda: Job.objects.filter(id__in=[bad.id, good.id], status__in=["done", "failed"]).count() == 2,
               timeout=30, message=f"both jobs to be recorded (the {kind} one first)\n{worker.output()[-3000:]}")
    row, after = Job.objects.get(id=bad.id), Job.objects.get(id=good.id)
    status, check = POISON[kind]
    assert row.status == status, row.last_error
    check(row)
    assert (after.status, after.result, after.worker) == ("done", "ok", row.worker), "the same worker went on"
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.output()[-3000:]
    assert runs([bad.id, good.id]) == {bad.id: 1, good.id: 1}, "nothing ran twice"


def test_finished_jobs_whose_own_commit_won_are_not_reported_lease_lost(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # The fault widens the gap between the monitor reading its holdings and renewing their leases to 0.3 s;
    # jobs that finish and commit in that gap were reported "lease lost … will not be recorded".
    worker = workers.consume("quick", MEEPO_TEST_FAULT="slow_lease_renewal")
    first = Job.objects.push("quick", json={})
    wait_until(lambda: Job.objects.get(id=first.id).status == "done", timeout=30, message="the worker to start")
    ids: list[int] = [first.id]
    for _ in range(10):
        ids += [j.id for j in Job.objects.push_many("quick", json=[{"sleep": 0.005} for _ in range(200)])]
        time.sleep(0.4)
    wait_until(lambda: Job.objects.filter(id__in=ids, status="done").count() == len(ids), timeout=90,
               message="every job to be done")
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.output()[-3000:]
    assert set(Job.objects.filter(id__in=ids).values_list("cid", flat=True)) == {3}, \
        "pushed, claimed once, committed once: nothing was repushed or rescued"
    output = worker.output()
    assert output.count("fault: slowed a lease renewal") >= 3, "leases were renewed while jobs ran"
    lost = [line for line in output.splitlines() if "lease lost" in line or "is stale" in line]
    assert not lost, f"{len(lost)} false report(s), e.g. {lost[:3]}"


def test_a_time_limit_failure_whose_recording_raises_still_replaces_the_worker(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("limited", json={"sleep": 20})
    worker = workers.consume("limited", "--no-recycle", MEEPO_TEST_FAULT="time_limit_record_raises")
    assert worker.wait(timeout=40) == 75, worker.output()[-3000:]  # --no-recycle: exit 75 instead of exec
    output = worker.output()
    assert f"limited job {job.id}: could not record its time-limit failure" in output
    assert "fault: recording the time-limit failure raised" in output
    assert f"will be replaced: limited job {job.id} overran its time limit" in output
