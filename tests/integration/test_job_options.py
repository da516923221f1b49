"""A provider's per-job options reach the sweeper: a Django Task's own max_attempts holds when its worker dies."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from django_meepo import Job
from django_meepo import statemachine as sm
from django_meepo.dispatch import new_dispatcher
from django_meepo.registry import get_task
from django_meepo.sweeper import Sweeper

pytestmark = pytest.mark.django_db(transaction=True)
djtasks = pytest.importorskip("testproject.djtasks", reason="needs Django's Tasks framework")


def lose_the_worker(job_id: int, task: str) -> datetime:
    """Claim the job as a worker that then dies; sweep once its lease has expired. Returns the sweep's time."""
    cid = Job.objects.get(id=job_id).cid
    sm.claim(task, [sm.Ref(job_id, cid)], worker="killed", lease_seconds=3, using="default")
    sweeper = Sweeper([get_task(task)], dispatcher=new_dispatcher(), using="default", holder="test")
    now = timezone.now() + timedelta(seconds=10)
    sweeper.tick(now=now)
    return now


def test_a_tasks_own_max_attempts_ends_it_failed_when_its_worker_is_lost(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    result = djtasks.fails_once_only.enqueue()  # its own max_attempts is 1; its queue allows 3
    queue = djtasks.fails_once_only.queue_name
    assert get_task(queue).options.max_failed_times == 3
    lose_the_worker(int(result.id), queue)
    row = Job.objects.get(id=int(result.id))
    assert (row.status, row.failed_times) == ("failed", 1), "one attempt was all it had"


def test_a_tasks_own_backoff_delays_the_run_after_a_lost_worker(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    result = djtasks.persistent.enqueue(succeed_on=9)  # its own max_attempts 4, retry_backoff 0.1
    queue = djtasks.persistent.queue_name
    swept_at = lose_the_worker(int(result.id), queue)
    row = Job.objects.get(id=int(result.id))
    assert (row.status, row.failed_times) == ("todo", 1)
    options = get_task(queue).options
    assert (options.retry_backoff, options.retry_jitter) == (0.2, False), "the test project's queue options"
    waited = (row.due_at - swept_at).total_seconds()
    assert waited == pytest.approx(0.1, abs=0.01), f"its own 0.1 s backoff, not the queue's 0.2 s ({waited} s)"
