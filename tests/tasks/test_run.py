"""Running Django Tasks on an in-process worker: results, signals, retries, priorities, deferral, async."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from django_meepo import Job
from django_meepo.tasks import MeepoBackend
from django_meepo.tasks.compat import TaskResultStatus
from testproject import djtasks
from testproject.models import Run

from .conftest import finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

VALUE_ERROR = "builtins.ValueError"


def test_a_task_runs_and_its_result_is_readable(backend, run_worker, signal_log) -> None:  # type: ignore[no-untyped-def]
    worker = run_worker("emails")
    result = djtasks.send_welcome.enqueue(42)
    done = finished(backend, result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == "Welcome, user 42!"
    assert (done.attempts, done.worker_ids, done.errors) == (1, [worker.id], [])
    assert done.enqueued_at <= done.started_at == done.last_attempted_at <= done.finished_at
    assert Job.objects.get(id=int(result.id)).result == '"Welcome, user 42!"'
    assert signal_log.finished(result.id) == [("enqueued", MeepoBackend, "READY"),
                                              ("started", MeepoBackend, "RUNNING"),
                                              ("finished", MeepoBackend, "SUCCESSFUL")]
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == "Welcome, user 42!"


def test_json_return_values_and_async_tasks(backend, run_worker) -> None:  # type: ignore[no-untyped-def]
    run_worker("default")
    echoed = djtasks.echo.enqueue(1, "two", three=[3])
    summed = djtasks.async_add.enqueue(20, 22)
    assert finished(backend, echoed.id).return_value == {"args": [1, "two"], "kwargs": {"three": [3]}}
    assert finished(backend, summed.id).return_value == 42


def test_task_context_sees_the_running_result(backend, run_worker) -> None:  # type: ignore[no-untyped-def]
    worker = run_worker("default")
    result = djtasks.whoami.enqueue()
    seen = finished(backend, result.id).return_value
    assert seen == {"id": result.id, "attempt": 1, "status": "RUNNING", "workers": [worker.id]}


def test_a_retry_that_ends_successful(backend, run_worker, signal_log) -> None:  # type: ignore[no-untyped-def]
    run_worker("default")
    result = djtasks.fail_until.enqueue(3)
    done = finished(backend, result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == 3
    assert done.attempts == 3 and len(done.worker_ids) == 3
    assert [e.exception_class_path for e in done.errors] == [VALUE_ERROR, VALUE_ERROR]
    assert "planned failure on attempt 1" in done.errors[0].traceback
    assert "Traceback" in done.errors[0].traceback
    assert done.errors[1].exception_class is ValueError
    assert sorted(Run.objects.filter(job_id=int(result.id)).values_list("attempt", flat=True)) == [1, 2, 3]
    assert done.started_at < done.last_attempted_at, "started_at is the first attempt's start"
    names = [name for name, _, _ in signal_log.finished(result.id)]
    assert names == ["enqueued", "started", "started", "started", "finished"], "finished only once, at the end"


def test_exhausted_attempts_end_failed(backend, run_worker, signal_log) -> None:  # type: ignore[no-untyped-def]
    run_worker("default")
    result = djtasks.always_fails.enqueue()
    done = finished(backend, result.id)
    assert done.status == TaskResultStatus.FAILED
    assert done.attempts == 3, "the queue's OPTIONS: MAX_ATTEMPTS 3"
    assert [e.exception_class_path for e in done.errors] == [VALUE_ERROR] * 3
    assert done.finished_at is not None
    with pytest.raises(ValueError, match="Task failed"):
        _ = done.return_value
    assert signal_log.finished(result.id)[-1] == ("finished", MeepoBackend, "FAILED")
    assert [n for n, _, _ in signal_log.of(result.id)].count("finished") == 1


def test_per_queue_max_attempts(backend, run_worker) -> None:  # type: ignore[no-untyped-def]
    run_worker("emails")
    result = djtasks.always_fails.using(queue_name="emails").enqueue()
    done = finished(backend, result.id)
    assert (done.status, done.attempts) == (TaskResultStatus.FAILED, 2)


def test_per_task_max_attempts_below_the_queues(backend, run_worker) -> None:  # type: ignore[no-untyped-def]
    run_worker("default")
    result = djtasks.fails_once_only.enqueue()
    done = finished(backend, result.id)
    assert (done.status, done.attempts, len(done.errors)) == (TaskResultStatus.FAILED, 1, 1)


def test_per_task_max_attempts_above_the_queues(backend, run_worker) -> None:  # type: ignore[no-untyped-def]
    run_worker("emails")
    result = djtasks.persistent.using(queue_name="emails").enqueue(4)
    done = finished(backend, result.id)
    assert (done.status, done.return_value, done.attempts) == (TaskResultStatus.SUCCESSFUL, 4, 4)


def test_per_task_retry_backoff_sets_the_next_due_time(backend, run_worker) -> None:  # type: ignore[no-untyped-def]
    """A Task's own retry_backoff (30 s) replaces its queue's RETRY_BACKOFF (0.2 s, no jitter) for the retry."""
    from dataclasses import replace

    from tests.support.services import wait_until

    run_worker("default")
    result = replace(djtasks.always_fails, retry_backoff=30).enqueue()
    job = wait_until(lambda: Job.objects.filter(id=int(result.id), status="todo", failed_times=1).first(),
                     timeout=30, message="the first failure to be recorded")
    failed_at = job.attempt_set.get().finished_at  # the failure's time: the same `now` as the retry's due time
    assert job.due_at - failed_at == timedelta(seconds=30), (job.due_at, failed_at)
    assert backend.get_result(result.id).status == TaskResultStatus.READY
    assert Run.objects.filter(job_id=job.id).count() == 1, "not retried after the queue's 0.2 s"


def test_priority_orders_waiting_tasks(backend, run_worker) -> None:  # type: ignore[no-untyped-def]
    labels = [("low", -80), ("normal", 0), ("high", 90), ("urgent", 100), ("lower", -1)]
    results = [djtasks.record_order.using(priority=p).enqueue(label) for label, p in labels]
    run_worker("default", parallel=1)
    for r in results:
        finished(backend, r.id)
    order = list(Run.objects.order_by("id").values_list("job_id", flat=True))
    by_job = {int(r.id): label for r, (label, _) in zip(results, labels, strict=True)}
    assert [by_job[j] for j in order] == ["urgent", "high", "normal", "lower", "low"], "every priority counts"


def test_the_database_dispatcher_orders_by_exact_priority_and_claims_deferred_tasks_when_due(  # type: ignore[no-untyped-def]
        backend, run_worker) -> None:
    from django.conf import settings
    from django.test import override_settings

    labels = [("ninety", 90), ("hundred", 100), ("ten", 10), ("forty-nine", 49), ("minus-sixty", -60),
              ("minus-fifty", -50)]
    # PREFETCH 0: one job per fetch (one slot), so the run order is the claim order. (Jobs claimed together run in
    # id order with this dispatcher: see docs/tasks.md, Priority.)
    tuned = {**settings.MEEPO.get("TASKS", {}), "default": {"PREFETCH": 0}}
    with override_settings(MEEPO={**settings.MEEPO, "DISPATCH": "database", "TASKS": tuned}):
        results = [djtasks.record_order.using(priority=p).enqueue(label) for label, p in labels]
        when = timezone.now() + timedelta(seconds=2)
        deferred = djtasks.whoami.using(run_after=when, priority=100).enqueue()
        run_worker("default", parallel=1)
        for r in results:
            finished(backend, r.id)
        done = finished(backend, deferred.id)
    runs = list(Run.objects.order_by("id").values_list("job_id", flat=True))
    by_job = {int(r.id): label for r, (label, _) in zip(results, labels, strict=True)}
    assert [by_job[j] for j in runs if j in by_job] == [
        "hundred", "ninety", "forty-nine", "ten", "minus-fifty", "minus-sixty"], "every priority counts"
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.started_at >= when, "not claimed before run_after"


def test_deferred_task_waits_for_run_after(backend, run_worker) -> None:  # type: ignore[no-untyped-def]
    run_worker("default")
    when = timezone.now() + timedelta(seconds=2)
    result = djtasks.whoami.using(run_after=when).enqueue()
    assert backend.get_result(result.id).status == TaskResultStatus.READY
    done = finished(backend, result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.started_at >= when


def test_a_return_value_that_is_not_json_fails_the_attempt(backend, run_worker) -> None:  # type: ignore[no-untyped-def]
    run_worker("default")
    result = djtasks.unserialisable.using(priority=0).enqueue()
    done = finished(backend, result.id)
    assert done.status == TaskResultStatus.FAILED
    assert {e.exception_class_path for e in done.errors} == {"builtins.TypeError"}
    assert "return value must be JSON-serialisable" in done.errors[0].traceback


def _push_spec(path: str) -> Job:
    spec = {"django_task": path, "backend": "default", "args": [], "kwargs": {}, "run_after": None,
            "max_attempts": None, "retry_backoff": None}
    return Job.objects.push("default", json=spec)


def test_a_path_that_is_not_a_task_is_never_called(run_worker) -> None:  # type: ignore[no-untyped-def]
    from tests.support.services import wait_until

    run_worker("default")
    job = _push_spec("testproject.djtasks.not_a_task")
    failed = wait_until(lambda: Job.objects.filter(id=job.id, status="failed").first(), timeout=30,
                        message="the job to fail")
    assert failed.attempts == 1, "never retried: it would never become a Task"
    assert "is a function, not a Django Task" in failed.last_error
    assert not Run.objects.filter(task="not_a_task").exists(), "the function was called"
    attempt = failed.attempt_set.get()
    assert attempt.error_class == "django_meepo.tasks.errors.NotATask"


def test_a_path_that_no_longer_imports_fails_with_a_clear_error(backend, run_worker) -> None:  # type: ignore[no-untyped-def]
    from tests.support.services import wait_until

    run_worker("default")
    job = _push_spec("testproject.djtasks.renamed_away")
    failed = wait_until(lambda: Job.objects.filter(id=job.id, status="failed").first(), timeout=30,
                        message="the job to fail")
    assert failed.attempts == 3, "retried like any failure: a worker one deploy behind may not know it yet"
    assert "'testproject.djtasks.renamed_away' does not import" in failed.last_error
    assert set(failed.attempt_set.values_list("error_class", flat=True)) == {"django_meepo.tasks.errors.TaskNotFound"}


def test_results_of_many_tasks(backend, run_worker) -> None:  # type: ignore[no-untyped-def]
    run_worker("default", "emails")
    results = [djtasks.add.enqueue(i, i) for i in range(30)] + [djtasks.send_welcome.enqueue(i) for i in range(10)]
    values = [finished(backend, r.id, timeout=60).return_value for r in results]
    assert values[:30] == [2 * i for i in range(30)]
    assert values[30:] == [f"Welcome, user {i}!" for i in range(10)]
    assert {json.loads(j.result) for j in Job.objects.filter(task="emails")} == set(values[30:])
