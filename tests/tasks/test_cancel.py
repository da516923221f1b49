"""Django Tasks and cancel: get_result of a cancelled job is FAILED (Django has no cancelled status) with a
``Cancelled`` error carrying the cancel's note, and ``task_finished`` is sent once the cancel is durable."""

from __future__ import annotations

from typing import Any

import pytest

from django_meepo import Job, api
from django_meepo import statemachine as sm
from django_meepo.tasks.compat import TaskResultStatus
from django_meepo.tasks.errors import Cancelled
from testproject import djtasks
from tests.tasks.test_finished import announced, read_on_finish  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_cancelled_task_is_failed_and_finished_with_a_cancelled_error(backend, read_on_finish) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    result = djtasks.add.enqueue(1, 2)
    api.cancel(int(result.id), note="cancelled by ops: wrong numbers")
    row = Job.objects.get(id=int(result.id))
    got = backend.get_result(result.id)
    assert got.status == TaskResultStatus.FAILED and got.is_finished
    assert got.finished_at == row.finished_at is not None
    [error] = got.errors
    assert error.exception_class_path == "django_meepo.tasks.errors.Cancelled"
    assert error.exception_class is Cancelled
    assert error.traceback == "cancelled by ops: wrong numbers"
    assert (got.attempts, got.worker_ids) == (0, [])
    seen = announced(read_on_finish, result.id)
    assert seen.sent.status == TaskResultStatus.FAILED
    assert [e.exception_class_path for e in seen.sent.errors] == ["django_meepo.tasks.errors.Cancelled"]


def test_a_task_cancelled_while_it_ran_keeps_its_worker_and_one_cancelled_error(backend) -> None:  # type: ignore[no-untyped-def]
    result = djtasks.add.enqueue(1, 2)
    job = Job.objects.get(id=int(result.id))
    sm.claim("default", [sm.Ref(job.id, job.cid)], worker="w-task", lease_seconds=30, using="default")
    api.cancel(job.id)
    got: Any = backend.get_result(result.id)
    assert got.status == TaskResultStatus.FAILED
    assert got.worker_ids == ["w-task"]
    assert [(e.exception_class_path, e.traceback) for e in got.errors] == [
        ("django_meepo.tasks.errors.Cancelled", "cancelled by an operator")], "the run's Attempt is not a failure"
