"""Enqueueing through MeepoBackend: a Job row in the caller's transaction, Django's errors for bad input."""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from django_meepo import Job
from django_meepo.dispatch.redis import queued_entries
from django_meepo.tasks import MeepoBackend, describe
from django_meepo.tasks.compat import InvalidTask, TaskResultDoesNotExist, TaskResultStatus
from testproject import djtasks

pytestmark = pytest.mark.django_db(transaction=True)


def queued(redis, prefix: str, queue: str) -> list[bytes]:  # type: ignore[no-untyped-def]
    return queued_entries(redis, prefix, queue)


def test_every_capability_django_meepo_can_honour(backend) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(backend, MeepoBackend)
    assert (backend.supports_defer, backend.supports_async_task, backend.supports_get_result,
            backend.supports_priority) == (True, True, True, True)


def test_enqueue_inserts_a_job_and_dispatches_after_commit(redis, key_prefix, signal_log) -> None:  # type: ignore[no-untyped-def]
    with transaction.atomic():
        result = djtasks.send_welcome.enqueue(42, greeting="Hello")
        job = Job.objects.get(id=int(result.id))
        assert queued(redis, key_prefix, "emails") == [], "nothing may reach Redis before the commit"
    assert queued(redis, key_prefix, "emails") == [f"{job.id}:1".encode()]
    assert (job.task, job.status, job.priority) == ("emails", "todo", 10)
    assert json.loads(job.payload_bytes) == {
        "django_task": "testproject.djtasks.send_welcome", "backend": "default", "args": [42],
        "kwargs": {"greeting": "Hello"}, "run_after": None, "max_attempts": None, "retry_backoff": None}
    assert result.status == TaskResultStatus.READY
    assert (result.args, result.kwargs, result.backend) == ([42], {"greeting": "Hello"}, "default")
    assert result.enqueued_at == job.created_at and result.enqueued_at is not None
    assert (result.started_at, result.finished_at, result.last_attempted_at) == (None, None, None)
    assert (result.errors, result.worker_ids, result.attempts) == ([], [], 0)
    assert result.task.func is djtasks.send_welcome.func
    assert signal_log.of(result.id) == [("enqueued", MeepoBackend, "READY")]


def test_rollback_leaves_no_job_and_dispatches_nothing(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError), transaction.atomic():
        djtasks.add.enqueue(1, 2)
        raise RuntimeError("roll back")
    assert Job.objects.count() == 0
    assert queued(redis, key_prefix, "default") == []


def test_priority_and_run_after_become_job_columns(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    when = timezone.now() + timedelta(hours=1)
    result = djtasks.add.using(priority=-60, run_after=when).enqueue(1, 2)
    job = Job.objects.get(id=int(result.id))
    assert (job.priority, job.due_at) == (-60, when)
    assert queued(redis, key_prefix, "default") == [], "a deferred task is dispatched when it is due"
    assert result.task.run_after == when and result.task.priority == -60
    again = djtasks.add.get_result(result.id)
    assert (again.task.run_after, again.task.priority, again.status) == (when, -60, TaskResultStatus.READY)


def test_get_result_reads_the_job_back(backend) -> None:  # type: ignore[no-untyped-def]
    result = djtasks.echo.enqueue("a", (1, 2), nested={"k": [True, None]})
    again = backend.get_result(result.id)
    assert again.id == result.id
    assert (again.args, again.kwargs) == (["a", [1, 2]], {"nested": {"k": [True, None]}})
    assert djtasks.echo.get_result(result.id).status == TaskResultStatus.READY


@pytest.mark.parametrize("bad_id", ["999999999", "abc", "", "-1", "1.5", "١٢"])
def test_get_result_of_an_unknown_id_raises(backend, bad_id) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result(bad_id)


def test_get_result_of_a_native_job_raises(backend) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", json={"sleep": 0})
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result(str(job.id))


def _nothing_written() -> None:
    assert Job.objects.count() == 0


@pytest.mark.parametrize("args", [
    (datetime(2024, 1, 1),),
    (object(),),
    ({1: "int key"},),
    (float("nan"),),
    ({"set": {1, 2}},),
])
def test_arguments_that_do_not_round_trip_through_json_raise_type_error(args) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="JSON"):
        djtasks.echo.enqueue(*args)
    _nothing_written()


def test_keyword_arguments_are_checked_too() -> None:
    with pytest.raises(TypeError, match="JSON"):
        djtasks.echo.enqueue(when=timezone.now())
    _nothing_written()


def test_unknown_queue_is_invalid() -> None:
    with pytest.raises(InvalidTask, match="Queue 'nope' is not valid"):
        djtasks.add.using(queue_name="nope").enqueue(1, 2)
    _nothing_written()


@pytest.mark.parametrize("priority", [101, -101])
def test_priority_out_of_range_is_invalid(priority: int) -> None:
    with pytest.raises(InvalidTask, match="priority"):
        djtasks.add.using(priority=priority).enqueue(1, 2)
    _nothing_written()


def test_naive_run_after_is_invalid_with_use_tz() -> None:
    with pytest.raises(InvalidTask, match="aware"):
        djtasks.add.using(run_after=datetime(2030, 1, 1)).enqueue(1, 2)
    _nothing_written()


def test_bad_per_task_retry_options_are_invalid() -> None:
    from dataclasses import replace

    with pytest.raises(InvalidTask, match="max_attempts"):
        replace(djtasks.add, max_attempts=-1)
    with pytest.raises(InvalidTask, match="retry_backoff"):
        replace(djtasks.add, retry_backoff="soon")


def test_per_task_retry_policy_travels_in_the_payload() -> None:
    result = djtasks.persistent.enqueue(2)
    payload = json.loads(Job.objects.get(id=int(result.id)).payload_bytes)
    assert (payload["max_attempts"], payload["retry_backoff"]) == (4, 0.1)


def test_aenqueue_and_aget_result(backend) -> None:  # type: ignore[no-untyped-def]
    from asgiref.sync import async_to_sync

    async def enqueue_and_read() -> tuple[object, object]:
        result = await djtasks.add.aenqueue(2, 3)
        return result, await backend.aget_result(result.id)

    result, again = async_to_sync(enqueue_and_read)()
    assert Job.objects.filter(id=int(result.id), task="default").exists()
    assert (again.status, again.args) == (TaskResultStatus.READY, [2, 3])


def test_describe_renders_a_task_job_readably() -> None:
    result = djtasks.send_welcome.enqueue(7, greeting="Hi")
    job = Job.objects.get(id=int(result.id))
    assert describe(job) == {"task": "testproject.djtasks.send_welcome", "backend": "default", "queue": "emails",
                             "args": [7], "kwargs": {"greeting": "Hi"}, "status": "READY", "return_value": None,
                             "run_after": None, "max_attempts": None, "retry_backoff": None}
    Job.objects.filter(id=job.id).update(result='"Hi, user 7!"')
    done = Job.objects.get(id=job.id)
    done.status = "done"  # in memory only: describe() reads what it is given
    assert describe(done)["return_value"] == "Hi, user 7!"
    assert describe(done)["status"] == "SUCCESSFUL"


def test_describe_returns_none_for_other_jobs() -> None:
    assert describe(Job.objects.push("record", json={"django_task": 1})) is None
    assert describe(Job.objects.push("record", b"\xff not json")) is None


def test_the_admin_shows_a_task_job_readably(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    result = djtasks.send_welcome.enqueue(7, greeting="Hi")
    admin = User.objects.create_superuser("admin", password="pw")
    client = Client()
    client.force_login(admin)
    page = client.get(reverse("admin:django_meepo_job_change", args=(int(result.id),))).content.decode()
    assert "Django Task" in page and "testproject.djtasks.send_welcome" in page
    assert "&quot;greeting&quot;: &quot;Hi&quot;" in page and "READY" in page
    assert re.search(r"<th>return value</th><td><pre>null</pre></td>", page), "READY: no return value yet"
    native = Job.objects.push("record", json={})
    other = client.get(reverse("admin:django_meepo_job_change", args=(native.id,))).content.decode()
    assert "Django Task" not in other


@pytest.mark.slow
def test_the_admin_shows_a_finished_task_jobs_return_value(backend, run_worker) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    from .conftest import finished

    run_worker("default")
    result = djtasks.echo.enqueue("<b>bold</b>", n=3)
    assert finished(backend, result.id).status == TaskResultStatus.SUCCESSFUL
    client = Client()
    client.force_login(User.objects.create_superuser("admin", password="pw"))
    page = client.get(reverse("admin:django_meepo_job_change", args=(int(result.id),))).content.decode()
    row = re.search(r"<th>return value</th><td><pre>(.*?)</pre></td>", page, re.DOTALL)
    assert row is not None, "the Django Task section has a return value row"
    shown = html.unescape(row.group(1))
    assert "<b>" not in row.group(1), "the return value is escaped"
    assert json.loads(shown) == {"args": ["<b>bold</b>"], "kwargs": {"n": 3}}
    assert re.search(r"<th>status</th><td><pre>SUCCESSFUL</pre></td>", page)
