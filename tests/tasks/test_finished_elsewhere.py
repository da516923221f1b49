"""``task_finished`` for Tasks jobs that end without their worker: the sweeper's expired leases, operators."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from django_meepo import Job, api
from django_meepo import statemachine as sm
from django_meepo.dispatch import new_dispatcher
from django_meepo.registry import get_task
from django_meepo.sweeper import Sweeper
from django_meepo.tasks import MeepoBackend
from testproject import djtasks

pytestmark = pytest.mark.django_db(transaction=True)


def lose_the_worker(job_id: int, queue: str) -> None:
    cid = Job.objects.get(id=job_id).cid
    sm.claim(queue, [sm.Ref(job_id, cid)], worker="killed", lease_seconds=3, using="default")
    Sweeper([get_task(queue)], dispatcher=new_dispatcher(), using="default",
            holder="test").tick(now=timezone.now() + timedelta(seconds=10))


def test_a_worker_lost_on_the_last_attempt_sends_failed(backend, signal_log, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    result = djtasks.fails_once_only.enqueue()  # max_attempts 1: the expired lease is final
    lose_the_worker(int(result.id), djtasks.fails_once_only.queue_name)
    assert Job.objects.get(id=int(result.id)).status == "failed"
    assert signal_log.of(result.id) == [("enqueued", MeepoBackend, "READY"), ("finished", MeepoBackend, "FAILED")]
    assert backend.get_result(result.id).errors[-1].exception_class_path.endswith("WorkerLost")


def test_a_worker_lost_with_attempts_left_sends_nothing_more(backend, signal_log, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    result = djtasks.persistent.enqueue(succeed_on=9)  # max_attempts 4: it runs again
    lose_the_worker(int(result.id), djtasks.persistent.queue_name)
    assert Job.objects.get(id=int(result.id)).status == "todo"
    assert [name for name, _, _ in signal_log.of(result.id)] == ["enqueued"]


def test_an_operator_commit_sends_finished_once_committed(backend, signal_log, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    done = djtasks.send_welcome.enqueue(7)
    failed = djtasks.send_welcome.enqueue(8)
    api.operator_commit(int(done.id), "done")
    api.operator_commit(int(failed.id), "failed", note="cancelled by support")
    assert signal_log.of(done.id)[-1] == ("finished", MeepoBackend, "SUCCESSFUL")
    assert signal_log.of(failed.id)[-1] == ("finished", MeepoBackend, "FAILED")
    api.repush(int(done.id))  # a repush does not finish anything
    assert [name for name, _, _ in signal_log.of(done.id)].count("finished") == 1
