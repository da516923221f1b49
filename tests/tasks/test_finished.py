"""``task_finished`` goes out only once the worker's commit of the outcome is durable, and only for commits
that won: a receiver that reads the result back (``get_result``) sees it finished."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from django_meepo import Job
from django_meepo.tasks import MeepoBackend
from django_meepo.tasks.compat import TaskResult, TaskResultStatus, task_finished
from testproject import djtasks
from testproject.models import Run
from tests.support.services import wait_until

from .conftest import finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TIME_LIMIT_EXCEEDED = "django_meepo.tasks.errors.TimeLimitExceeded"


@dataclasses.dataclass
class Seen:
    """Per task_finished: the sender, the result sent, and what ``get_result()`` said inside the receiver."""

    sender: Any
    sent: TaskResult
    read: TaskResult | Exception


@pytest.fixture
def read_on_finish(backend: Any) -> Iterator[list[Seen]]:
    seen: list[Seen] = []

    def receiver(sender: Any, task_result: TaskResult, **kwargs: Any) -> None:
        try:
            read: TaskResult | Exception = backend.get_result(task_result.id)
        except Exception as exc:  # recorded, so that the test names it (send_robust would only log it)
            read = exc
        seen.append(Seen(sender, task_result, read))

    task_finished.connect(receiver, weak=False)
    yield seen
    task_finished.disconnect(receiver)


def of(seen: list[Seen], result_id: str) -> list[Seen]:
    return [s for s in list(seen) if s.sent.id == result_id]


def announced(seen: list[Seen], result_id: str) -> Seen:
    """The one task_finished of ``result_id`` (waits for it: it is sent after the commit, on the worker)."""
    wait_until(lambda: of(seen, result_id), timeout=30, interval=0.05, message=f"task_finished of {result_id}")
    [one] = of(seen, result_id)
    return one


def test_a_receiver_reading_the_result_sees_it_successful(backend, run_worker, read_on_finish) -> None:  # type: ignore[no-untyped-def]
    run_worker("emails")
    result = djtasks.send_welcome.enqueue(42)
    seen = announced(read_on_finish, result.id)
    assert not isinstance(seen.read, Exception), seen.read
    assert seen.read.status == TaskResultStatus.SUCCESSFUL, "get_result() inside task_finished"
    assert seen.read.return_value == "Welcome, user 42!"
    assert seen.sender is MeepoBackend
    assert seen.sent.status == TaskResultStatus.SUCCESSFUL and seen.sent.return_value == "Welcome, user 42!"
    job = Job.objects.get(id=int(result.id))
    assert seen.sent.finished_at == seen.read.finished_at == job.finished_at, "the committed finish time"
    assert (seen.sent.attempts, seen.sent.worker_ids) == (1, seen.read.worker_ids)


def test_a_receiver_reading_the_result_sees_it_failed(backend, run_worker, read_on_finish) -> None:  # type: ignore[no-untyped-def]
    run_worker("default")
    result = djtasks.always_fails.enqueue()
    seen = announced(read_on_finish, result.id)
    assert not isinstance(seen.read, Exception), seen.read
    assert seen.read.status == TaskResultStatus.FAILED, "get_result() inside task_finished"
    assert seen.sent.status == TaskResultStatus.FAILED
    assert seen.read.attempts == seen.sent.attempts == 3, "sent once, after the last attempt's failure"
    assert [e.exception_class_path for e in seen.sent.errors] == ["builtins.ValueError"] * 3
    assert seen.sent.finished_at == Job.objects.get(id=int(result.id)).finished_at


def test_a_run_whose_commit_loses_announces_nothing(backend, run_worker, read_on_finish) -> None:  # type: ignore[no-untyped-def]
    """The first run is repushed while it runs: its commit of done loses, and it runs again."""
    run_worker("default", parallel=1)
    result = djtasks.repushed_on_first_run.enqueue()
    seen = announced(read_on_finish, result.id)
    assert sorted(Run.objects.filter(job_id=int(result.id)).values_list("attempt", flat=True)) == [1, 2]
    assert seen.sent.return_value == 2, "only the run whose commit won is announced"
    assert not isinstance(seen.read, Exception) and seen.read.return_value == 2
    assert (seen.sent.status, seen.sent.attempts) == (TaskResultStatus.SUCCESSFUL, 2)
    assert finished(backend, result.id).return_value == 2
    # The first run's outcome reached the committer before the second run was fetched (one slot, one committer
    # queue), so by now it was either refused or dropped: still exactly one task_finished.
    assert len(of(read_on_finish, result.id)) == 1


def test_a_final_failure_by_time_limit_is_announced(backend, run_worker, read_on_finish) -> None:  # type: ignore[no-untyped-def]
    meepo = {**settings.MEEPO, "TASKS": {**settings.MEEPO.get("TASKS", {}), "slow": {"TIME_LIMIT": 0.5}}}
    with override_settings(MEEPO=meepo):
        run_worker("slow")
        once = dataclasses.replace(djtasks.sleepy, max_attempts=1)
        result = once.enqueue(2.5)
        seen = announced(read_on_finish, result.id)
    assert not isinstance(seen.read, Exception), seen.read
    assert seen.read.status == seen.sent.status == TaskResultStatus.FAILED
    assert [e.exception_class_path for e in seen.sent.errors] == [TIME_LIMIT_EXCEEDED]
    assert "hard time limit of 0.5 s" in seen.sent.errors[0].traceback
    assert Job.objects.get(id=int(result.id)).status == "failed"



def test_a_failure_is_announced_with_its_traceback_as_the_exception_handled(backend, run_worker) -> None:  # type: ignore[no-untyped-def]
    """Django's own receiver logs a FAILED result with logger.exception: sent outside a handler, it printed a
    stray "NoneType: None"; it now prints the Task's recorded traceback."""
    import logging
    import sys

    handled: list[tuple[str, BaseException | None, str]] = []

    def receiver(sender: Any, task_result: TaskResult, **kwargs: Any) -> None:
        exc = sys.exc_info()[1]
        handled.append((task_result.id, exc, logging.Formatter().formatException(sys.exc_info())
                        if exc is not None else ""))

    task_finished.connect(receiver, weak=False)
    try:
        run_worker("default", "emails")
        failed = djtasks.always_fails.enqueue()
        ok = djtasks.send_welcome.enqueue(1)
        wait_until(lambda: {failed.id, ok.id} <= {h[0] for h in handled}, timeout=60, interval=0.05,
                   message="both task_finished")
    finally:
        task_finished.disconnect(receiver)
    by_id = {h[0]: h for h in handled}
    _, exc, text = by_id[failed.id]
    assert exc is not None, "sent inside the handling of the recorded failure"
    assert "Traceback (most recent call last)" in str(exc) and "ValueError" in str(exc), str(exc)
    assert "NoneType: None" not in text
    assert by_id[ok.id][1] is None, "a success is sent outside any exception handler"
