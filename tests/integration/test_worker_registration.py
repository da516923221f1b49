"""A running worker reports itself (the admin's worker list and the dashboard read it) and removes itself."""

from __future__ import annotations

import pytest

from django_meepo import Job, stats
from django_meepo.models import Worker
from testproject.models import Run
from tests.support.inprocess import running_worker
from tests.support.services import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_reports_itself_while_it_runs_and_removes_itself(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    slow = Job.objects.push("record", json={"sleep": 2.5})  # record's heartbeat is 1 s
    with running_worker("record", parallel=2, sweep=False) as worker:
        row = wait_until(lambda: Worker.objects.filter(id=worker.id).first(), timeout=10, message="its row")
        assert (row.tasks, row.parallel) == ("record", 2)
        wait_until(lambda: Run.objects.filter(job_id=slow.id).exists(), timeout=10, message="the job to start")
        first_seen = row.last_seen
        wait_until(lambda: Worker.objects.get(id=worker.id).last_seen > first_seen, timeout=10,
                   message="last_seen to advance")
        [me] = [w for w in stats.collect(redis=False).workers if w.id == worker.id]
        assert me.alive and me.holding == 1 and [j.id for j in me.jobs] == [slow.id]
        wait_until(lambda: Job.objects.get(id=slow.id).status == "done", timeout=20, message="the job to finish")
        wait_until(lambda: Worker.objects.get(id=worker.id).processed == 1, timeout=10,
                   message="the processed count")
    assert not Worker.objects.filter(id=worker.id).exists(), "a worker that stopped cleanly removes its row"
