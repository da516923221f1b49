"""A stop signal that arrives while the worker is being replaced: the process exits; it is not replaced."""

from __future__ import annotations

import signal

import pytest

from django_meepo import Job
from testproject.models import Run
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_sigterm_during_a_recycle_drain_exits_0_instead_of_re_executing(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # `limited` overruns its 1.5 s time limit: the worker must be replaced, and first drains the `record` job
    # still running. A SIGTERM in that drain used to be swallowed: the process re-executed itself and went on.
    slow = Job.objects.push("record", json={"sleep": 4})
    Job.objects.push("limited", json={"sleep": 30})
    worker = workers.consume("limited", "record", "--parallel", "2", "--no-sweep")
    wait_until(lambda: "will be replaced" in worker.output(), timeout=30, message="the recycle to start")
    assert Run.objects.filter(job_id=slow.id, finished=False).exists(), "the record job is still running"
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.output()
    assert "replacing the worker process" not in worker.output()
    assert Job.objects.get(id=slow.id).status == "done", "the drain let the running job finish"
