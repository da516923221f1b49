"""Cancel end to end: real ``meepo_consume`` processes, the real database and Redis.

The jobs are in testproject/jobs_cancel.py. A queued job that is cancelled never runs; a running one is fenced
(its commit is refused, the row stays ``cancelled``) and sees ``job.cancelled`` through the worker's heartbeat.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from django_meepo import Job, api
from django_meepo.models import Attempt
from testproject.models import Run
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def row(job_id: int) -> tuple[str, int]:
    job = Job.objects.get(id=job_id)
    return job.status, job.cid


def outcomes(job_id: int) -> list[str]:
    return list(Attempt.objects.filter(job_id=job_id).order_by("number", "id").values_list("outcome", flat=True))


def started(job_id: int) -> bool:
    return Run.objects.filter(job_id=job_id).exists()


def test_a_cancelled_todo_job_never_runs(workers, redis) -> None:  # type: ignore[no-untyped-def]
    cancelled = Job.objects.push("record", json={})  # dispatched to Redis at cid 1
    api.cancel(cancelled.id)
    after = Job.objects.push("record", json={})  # queued behind it: once it ran, the worker has seen both entries
    worker = workers.consume("record")
    wait_until(lambda: row(after.id)[0] == "done", timeout=60,
               message=f"the job queued after the cancelled one to run; worker log: {worker.output()[-2000:]}")
    assert not started(cancelled.id), "the cancelled job ran"
    assert row(cancelled.id) == ("cancelled", 2)
    assert Job.objects.get(id=cancelled.id).attempts == 0


def test_a_running_job_sees_the_cancel_through_its_heartbeat_and_stops_early(  # type: ignore[no-untyped-def]
        workers, redis, tmp_path: Path) -> None:
    report = tmp_path / "report"
    job = Job.objects.push("cancel_coop", json={"report": str(report)})
    worker = workers.consume("cancel_coop")
    wait_until(lambda: started(job.id), timeout=60, message=f"the job to start; log: {worker.output()[-2000:]}")
    api.cancel(job.id, note="stop it")
    wait_until(report.exists, timeout=60,
               message=f"the job to see job.cancelled (HEARTBEAT 1 s); worker log: {worker.output()[-2000:]}")
    assert report.read_text() == "cancelled=True stopping=True"
    wait_until(lambda: "cancelled while it ran" in worker.output(), timeout=30, message="the worker's log line")
    final = Job.objects.get(id=job.id)
    assert (final.status, final.cid, final.last_error, final.result) == ("cancelled", 3, "stop it", None)
    assert outcomes(job.id) == ["cancelled"]
    assert Run.objects.filter(job_id=job.id).count() == 1, "it is not run again"


def test_a_running_job_sees_the_cancel_at_its_own_heartbeat(workers, redis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The task's HEARTBEAT is 120 s: the monitor's first renewal comes two minutes after the start, so a cancel
    seen within the wait below was seen by the function's own ``job.heartbeat()``."""
    report = tmp_path / "report"
    job = Job.objects.push("cancel_heartbeat", json={"report": str(report)})
    worker = workers.consume("cancel_heartbeat")
    wait_until(lambda: started(job.id), timeout=60, message=f"the job to start; log: {worker.output()[-2000:]}")
    api.cancel(job.id)
    wait_until(report.exists, timeout=60,
               message=f"the job's own heartbeat to see job.cancelled; worker log: {worker.output()[-2000:]}")
    assert report.read_text() == "cancelled=True stopping=True"
    assert row(job.id) == ("cancelled", 3) and outcomes(job.id) == ["cancelled"]


@pytest.mark.parametrize("task", ["cancel_stubborn", "cancel_stubborn_manual"])
def test_a_running_job_that_ignores_the_cancel_has_its_commit_refused(  # type: ignore[no-untyped-def]
        task, workers, redis, tmp_path: Path) -> None:
    gate, report = tmp_path / "gate", tmp_path / "report"
    job = Job.objects.push(task, json={"gate": str(gate), "report": str(report)})
    worker = workers.consume(task)
    wait_until(lambda: started(job.id), timeout=60, message=f"the job to start; log: {worker.output()[-2000:]}")
    api.cancel(job.id)
    wait_until(lambda: "cancelled while it ran" in worker.output(), timeout=60,
               message=f"the heartbeat to find the job cancelled; worker log: {worker.output()[-2000:]}")
    gate.touch()  # the function carries on regardless and ends as if nothing happened
    wait_until(report.exists, timeout=60, message=f"the job to return; worker log: {worker.output()[-2000:]}")
    text = report.read_text()
    assert text.startswith("cancelled=True"), text
    if task == "cancel_stubborn_manual":
        assert "CommitConflict: cannot commit done of cancel_stubborn_manual job" in text, text
        assert "it is now 'cancelled' at cid 3, not at cid 2" in text, text
    # a later job of the same worker has run: the cancelled run's outcome has been handled by then
    after = Job.objects.push(task, json={"gate": str(gate), "report": str(tmp_path / "after")})
    wait_until(lambda: row(after.id)[0] == "done" or (tmp_path / "after").exists(), timeout=60,
               message=f"a later job to run; worker log: {worker.output()[-2000:]}")
    assert row(job.id) == ("cancelled", 3), "the row stays cancelled"
    assert Job.objects.get(id=job.id).result is None
    assert outcomes(job.id) == ["cancelled"]
