"""Django Tasks on a queue whose jobs are in a table of their own (MEEPO["TASKS"]["emails"]["MODEL"]): result ids
read ``queue:id`` (ids are unique per table), get_result finds them there, an unknown one does not exist."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from django_meepo import Job
from django_meepo.tasks.compat import TaskResultDoesNotExist, TaskResultStatus
from testproject import djtasks
from testproject.models import OwnAttempt, OwnJob
from tests.tasks.conftest import finished

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def emails_on_own_table() -> Iterator[None]:
    tasks = {**settings.MEEPO["TASKS"], "emails": {"MODEL": "testproject.OwnJob"}}
    with override_settings(MEEPO={**settings.MEEPO, "TASKS": tasks}):
        yield


def test_a_queue_with_its_own_table_names_results_queue_colon_id(emails_on_own_table: None, backend: Any,
                                                                 run_worker: Any, signal_log: Any) -> None:
    shared = djtasks.add.enqueue(1, 2)  # queue "default": the shared table, ids as before
    own = djtasks.send_welcome.enqueue(7)
    job = OwnJob.objects.get(task="emails")
    assert (shared.id, own.id) == (str(Job.objects.get(task="default").id), f"emails:{job.id}")
    assert len(own.id) <= 64 and not Job.objects.filter(task="emails").exists()
    assert backend.get_result(own.id).status == TaskResultStatus.READY
    run_worker("emails")
    done = finished(backend, own.id)
    assert (done.status, done.return_value) == (TaskResultStatus.SUCCESSFUL, "Welcome, user 7!")
    assert OwnJob.objects.get(id=job.id).status == "done"
    names = [name for name, _, _ in signal_log.finished(own.id)]
    assert names == ["enqueued", "started", "finished"], "task_finished reads the row from the queue's table"


@pytest.mark.parametrize("bad", ["emails:0", "emails:", ":5", "emails:999999", "nope:1", "default:1", "x" * 60 + ":1",
                                 "emails:1:2", "1e3"])
def test_an_unknown_result_id_does_not_exist(emails_on_own_table: None, backend: Any, bad: str) -> None:
    djtasks.send_welcome.enqueue(7)
    djtasks.add.enqueue(1, 2)
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result(bad)


def test_a_failure_on_the_own_table_reads_its_own_attempts(emails_on_own_table: None, backend: Any) -> None:
    own = djtasks.send_welcome.enqueue(7)
    job = OwnJob.objects.get(task="emails")
    from django.utils import timezone

    OwnAttempt.objects.create(job=job, number=1, worker="w1", started_at=timezone.now(), finished_at=timezone.now(),
                              outcome="failed", error_class="builtins.ValueError", error="Traceback: boom")
    OwnJob.objects.filter(id=job.id).update(attempts=1, failed_times=1, worker="w1", started_at=timezone.now())
    [error] = backend.get_result(own.id).errors
    assert error.exception_class_path == "builtins.ValueError"
