"""Django Tasks on real ``manage.py meepo_consume`` subprocesses: queues are tasks; a killed worker's task
runs again after its lease and every attempt is counted."""

from __future__ import annotations

import signal

import pytest

from django_meepo.tasks.compat import TaskResultStatus
from testproject import djtasks
from testproject.models import Run
from tests.support.services import wait_until

from .conftest import finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_meepo_consume_runs_the_queues_and_results_are_readable_here(backend, workers) -> None:  # type: ignore[no-untyped-def]
    worker = workers.consume("default", "emails")
    welcome = djtasks.send_welcome.enqueue(5, greeting="Hey")
    total = djtasks.add.enqueue(40, 2)
    retried = djtasks.fail_until.enqueue(2)
    assert finished(backend, welcome.id, timeout=60).return_value == "Hey, user 5!"
    assert finished(backend, total.id, timeout=60).return_value == 42
    done = finished(backend, retried.id, timeout=60)
    assert (done.status, done.attempts, len(done.errors)) == (TaskResultStatus.SUCCESSFUL, 2, 1)
    assert all(f":{worker.pid}:" in w for w in done.worker_ids), done.worker_ids
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, worker.output()


def test_a_task_whose_worker_is_killed_runs_again_and_counts_both_attempts(backend, workers) -> None:  # type: ignore[no-untyped-def]
    first = workers.consume("slow")
    result = djtasks.sleepy.enqueue(4)
    wait_until(lambda: Run.objects.filter(job_id=int(result.id)).exists(), timeout=60,
               message="the first attempt to start")
    assert backend.get_result(result.id).status == TaskResultStatus.RUNNING
    first.kill()  # SIGKILL mid-task: no hand-back, no commit; only the lease can tell
    second = workers.consume("slow")
    done = finished(backend, result.id, timeout=90)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == 2, "the second run saw attempt 2"
    assert done.attempts == 2
    assert f":{first.pid}:" in done.worker_ids[0] and f":{second.pid}:" in done.worker_ids[1], done.worker_ids
    assert [e.exception_class_path for e in done.errors] == ["django_meepo.tasks.errors.WorkerLost"]
    assert "lease expired" in done.errors[0].traceback
    assert list(Run.objects.filter(job_id=int(result.id)).order_by("id").values_list("attempt", flat=True)) == [1, 2]
