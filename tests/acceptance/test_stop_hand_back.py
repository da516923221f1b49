"""A stop exits once its hand-back is done: real ``manage.py meepo_consume`` processes and SIGTERM.

On SIGTERM a worker hands back the jobs it has not started, gives running jobs ``--grace`` seconds, hands back
those still running, and exits with status 0 at once (``os._exit``), although their threads still run: a
thread cannot be stopped, and it must not go on beside the job's next run.
"""

from __future__ import annotations

import signal

import pytest
from django.db.models import Count

from django_meepo import Job
from django_meepo.dispatch.redis import dispatched_key
from django_meepo.models import Attempt
from testproject.jobs_windows import HANG_SECONDS
from testproject.models import Run
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
TASK = "windows_hang_once"  # one slot, PREFETCH 2; a {"hang": true} job hangs on its first attempt
GRACE = 1


def test_a_job_running_past_the_grace_is_handed_back_and_the_process_exits_at_once(workers, redis,
                                                                                  key_prefix) -> None:  # type: ignore[no-untyped-def]
    hung, *queued = Job.objects.push_many(TASK, json=[{"hang": True}, {}, {}])
    ids = [hung.id, *(j.id for j in queued)]
    first = workers.consume(TASK, "--grace", str(GRACE))
    wait_until(lambda: Run.objects.filter(job_id=hung.id).exists(), timeout=60, message="the hung job to start")
    wait_until(lambda: Job.objects.filter(id__in=ids, status="doing").count() == 3, timeout=30,
               message="the two other jobs to be claimed and queued behind the hung one")
    [first_run] = Run.objects.filter(job_id=hung.id)
    assert first_run.attempt == 1 and not first_run.finished

    first.signal(signal.SIGTERM)
    # The hung job's thread would run for HANG_SECONDS: an exit long before that did not wait for it.
    status = first.wait(timeout=HANG_SECONDS / 5)
    output = first.output()
    assert status == 0, output
    assert "meepo: 1 running job(s) were handed back; exiting at once" in output, output
    assert not Run.objects.filter(job_id__in=[j.id for j in queued]).exists(), "the queued jobs never started"

    row = Job.objects.get(id=hung.id)
    assert row.status == "todo" and row.cid > first_run.cid, "handed back at a cid above its run's"
    assert (row.failed_times, row.rescues, row.attempts) == (0, 0, 1), "no failure counted, no rescue"
    [attempt] = Attempt.objects.filter(job_id=hung.id)
    assert attempt.outcome == "released" and f"did not finish within {GRACE} s" in attempt.error
    for job in Job.objects.filter(id__in=[j.id for j in queued]):
        assert (job.status, job.failed_times, job.rescues) == ("todo", 0, 0), "a job not started is handed back"
        assert list(Attempt.objects.filter(job_id=job.id).values_list("outcome", flat=True)) == ["released"]
    current = dict(Job.objects.filter(id__in=ids).values_list("id", "cid"))
    assert {int(k): int(v) for k, v in redis.hgetall(dispatched_key(key_prefix, TASK)).items()} == current, \
        "the hand-backs were dispatched at their new cids before the process left"

    second = workers.consume(TASK)
    wait_until(lambda: Job.objects.filter(id__in=ids, status="done").count() == 3, timeout=60,
               message="a second worker to run the handed-back jobs")
    assert list(Run.objects.filter(job_id=hung.id).order_by("id").values_list("attempt", "finished", "pid")) == \
        [(1, False, first.pid), (2, True, second.pid)], "the hung job ran to done once more, in the second worker"
    finished = dict(Run.objects.filter(job_id__in=ids, finished=True).values_list("job_id")
                    .annotate(n=Count("id")).order_by())
    assert finished == {i: 1 for i in ids}, "each job ran to done exactly once"
    assert set(Job.objects.filter(id__in=ids).values_list("failed_times", flat=True)) == {0}
