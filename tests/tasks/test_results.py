"""TaskResult read from the rows as the sweeper and the monitor leave them: a parked zombie, a time limit."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.utils import timezone

from django_meepo import Job
from django_meepo import statemachine as sm
from django_meepo.models import Attempt
from django_meepo.registry import get_task
from django_meepo.tasks.compat import TaskResultStatus
from django_meepo.tasks.errors import TimeLimitExceeded, WorkerLost
from testproject import djtasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_zombie_is_failed_and_finished_when_it_was_parked(backend) -> None:  # type: ignore[no-untyped-def]
    """The sweeper parks a job whose lease expired (ZOMBIE_STATUS "zombie"): FAILED, finished when parked."""
    result = djtasks.add.enqueue(1, 2)
    job = Job.objects.get(id=int(result.id))
    claimed_at = timezone.now()
    assert len(sm.claim("default", [sm.Ref(job.id, job.cid)], worker="w1", lease_seconds=1, using="default",
                        now=claimed_at)) == 1
    parked_at = claimed_at + timedelta(seconds=5)
    options = dataclasses.replace(get_task("default").options, zombie_status="zombie")
    assert [t.status for t in sm.expire_leases("default", options, using="default", now=parked_at).changed] == [
        "zombie"]
    row = Job.objects.get(id=job.id)
    assert (row.status, row.finished_at, row.updated_at) == ("zombie", None, parked_at)
    zombie = backend.get_result(result.id)
    assert zombie.status == TaskResultStatus.FAILED
    assert zombie.finished_at == parked_at, "finished_at is the job's updated_at: when it was parked"
    assert zombie.is_finished
    assert [e.exception_class_path for e in zombie.errors] == [f"{WorkerLost.__module__}.WorkerLost"]
    assert (zombie.started_at, zombie.last_attempted_at, zombie.worker_ids) == (claimed_at, claimed_at, ["w1"])


def test_a_time_limit_attempt_is_a_time_limit_exceeded_error(backend) -> None:  # type: ignore[no-untyped-def]
    result = djtasks.add.enqueue(1, 2)
    started = timezone.now() - timedelta(minutes=5)
    ended = started + timedelta(seconds=10)
    # As the worker's monitor records an attempt over TIME_LIMIT: error_class is the bare name it writes.
    Job.objects.filter(id=int(result.id)).update(status="todo", attempts=1, failed_times=1, started_at=started,
                                                 worker="w1")
    Attempt.objects.create(job_id=int(result.id), number=1, worker="w1", started_at=started, finished_at=ended,
                           outcome=Attempt.Outcome.TIME_LIMIT, error_class="TimeLimitExceeded",
                           error="job exceeded its hard time limit of 10 s; its lease was given up")
    retried = backend.get_result(result.id)
    assert retried.status == TaskResultStatus.READY
    [error] = retried.errors
    assert error.exception_class_path == "django_meepo.tasks.errors.TimeLimitExceeded"
    assert error.exception_class is TimeLimitExceeded
    assert "hard time limit of 10 s" in error.traceback
