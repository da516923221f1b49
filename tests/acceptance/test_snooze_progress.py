"""``job.snooze()`` and ``job.progress()`` end to end: real ``meepo_consume`` processes, the real database and Redis.

The jobs are in testproject/jobs_snooze.py. The test process reads the job rows while a worker process runs the
jobs, so what it sees is what another process sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from django_meepo import Job, api
from django_meepo.models import Attempt
from testproject.models import Run
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def outcomes(job_id: int) -> list[str]:
    return list(Attempt.objects.filter(job_id=job_id).order_by("number", "id").values_list("outcome", flat=True))


def ended(job_id: int) -> bool:
    return Job.objects.filter(id=job_id, status__in=["done", "failed"]).exists()


@pytest.mark.parametrize(("task", "raise_after"), [("snooze_auto", False), ("snooze_auto", True),
                                                  ("snooze_manual", False)])
def test_a_snooze_counts_no_failure_and_the_job_runs_again_after_the_delay_and_ends_done(  # type: ignore[no-untyped-def]
        task, raise_after, workers, redis) -> None:
    # attempt 1 fails (a failure counted), attempt 2 snoozes 2 s (and then returns, or raises), attempt 3 ends done
    job = Job.objects.push(task, json={"fail_on": [1], "snooze_on": [2], "snooze": 2, "raise_after": raise_after})
    worker = workers.consume(task)
    wait_until(lambda: outcomes(job.id) == ["failed", "snoozed"], timeout=60,
               message=f"the snooze to be recorded; worker log: {worker.output()[-2000:]}")
    snoozed = Job.objects.get(id=job.id)
    assert snoozed.failed_times == 1  # the failure of attempt 1; the snooze (and its raise) counted none
    assert snoozed.status in ("todo", "doing", "done")
    attempt = Attempt.objects.get(job_id=job.id, outcome="snoozed")
    assert attempt.number == 2 and "snoozed for 2 s" in attempt.error
    wait_until(lambda: ended(job.id), timeout=60, message=f"the job to end; worker log: {worker.output()[-2000:]}")
    final = Job.objects.get(id=job.id)
    assert (final.status, final.failed_times, final.attempts) == ("done", 1, 3)
    runs = list(Run.objects.filter(job_id=job.id).order_by("attempt").values_list("attempt", "created_at"))
    assert [a for a, _ in runs] == [1, 2, 3]
    assert (runs[2][1] - attempt.finished_at).total_seconds() >= 1.0  # not run again before it was due
    assert outcomes(job.id) == ["failed", "snoozed"]  # the snoozed run's return or raise recorded nothing
    log = worker.output()
    assert "outcome was not recorded" not in log and "lease lost" not in log, log[-3000:]  # nor tried to


def test_a_snooze_of_a_run_whose_job_moved_on_is_refused_and_changes_nothing(  # type: ignore[no-untyped-def]
        workers, redis, tmp_path: Path) -> None:
    gate, report = tmp_path / "gate", tmp_path / "report"
    job = Job.objects.push("snooze_stale", json={"gate": str(gate), "report": str(report)})
    worker = workers.consume("snooze_stale")
    wait_until(lambda: Run.objects.filter(job_id=job.id, attempt=1).exists(), timeout=60,
               message=f"attempt 1 to start; worker log: {worker.output()[-2000:]}")
    api.repush(job.id)  # the operator fences attempt 1 off; attempt 2 runs and ends done
    wait_until(lambda: ended(job.id), timeout=60, message="attempt 2 to end")
    gate.touch()  # now attempt 1, stale, tries to snooze
    wait_until(report.exists, timeout=60, message=f"attempt 1's snooze; worker log: {worker.output()[-2000:]}")
    text = report.read_text()
    assert text.startswith("CommitConflict: cannot snooze snooze_stale job") and "'done'" in text, text
    final = Job.objects.get(id=job.id)
    assert (final.status, final.failed_times) == ("done", 0)
    assert "snoozed" not in outcomes(job.id)


def test_progress_is_visible_from_another_process_while_the_job_runs(  # type: ignore[no-untyped-def]
        workers, redis, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    job = Job.objects.push("progress_steps", json={"steps": 100000, "gate": str(gate)})
    worker = workers.consume("progress_steps", MEEPO_PROGRESS_INTERVAL="0.2")
    seen: set[int] = set()

    def advanced() -> bool:
        row = Job.objects.filter(id=job.id, status="doing").values("progress_done", "progress_total",
                                                                   "progress_note").first()
        if row and row["progress_done"] is not None:
            assert row["progress_total"] == 100000 and row["progress_note"] == f"step {row['progress_done']} of 100000"
            seen.add(row["progress_done"])
        return len(seen) >= 2

    wait_until(advanced, timeout=60, message=f"two progress values while it runs; log: {worker.output()[-2000:]}")
    gate.touch()
    wait_until(lambda: ended(job.id), timeout=60, message="the job to end")
    final = Job.objects.get(id=job.id)
    assert final.status == "done"
    assert (final.progress_done, final.progress_total, final.progress_note) == (100000, 100000, "finished")


def test_the_last_report_is_written_when_the_run_ends_though_the_throttle_held_it(  # type: ignore[no-untyped-def]
        workers, redis, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    job = Job.objects.push("progress_steps", json={"steps": 10, "gate": str(gate)})
    worker = workers.consume("progress_steps", MEEPO_PROGRESS_INTERVAL="3600")  # only the first report is due
    wait_until(lambda: Job.objects.filter(id=job.id, status="doing", progress_done=0).exists(), timeout=60,
               message=f"the first report; worker log: {worker.output()[-2000:]}")
    assert Job.objects.get(id=job.id).progress_note == "step 0 of 10"
    gate.touch()
    wait_until(lambda: ended(job.id), timeout=60, message="the job to end")
    final = Job.objects.get(id=job.id)
    assert (final.status, final.progress_done, final.progress_total, final.progress_note) == ("done", 10, 10,
                                                                                               "finished")
