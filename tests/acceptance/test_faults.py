"""Real `manage.py meepo_consume` processes, signals and faults, against the real MariaDB and Redis."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection
from django.db.models import Count

from django_meepo import Job
from django_meepo.models import Attempt
from testproject.models import Run
from tests.support.redis_only import REDIS_ONLY_BANNER
from tests.support.services import kill_connections, wait_until
from tests.support.workers import ROOT, subprocess_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def finished(ids: list[int]) -> bool:
    return Job.objects.filter(id__in=ids, status__in=["done", "failed"]).count() == len(ids)


def runs(ids: list[int]) -> dict[int, int]:
    return dict(Run.objects.filter(job_id__in=ids).values_list("job_id").annotate(n=Count("id")).order_by())


def test_a_worker_sigkilled_mid_job_the_job_runs_again_after_its_lease(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # Meepo parked such a job after a 24-hour timeout (weakness 4); here it runs again within seconds.
    job = Job.objects.push("record", json={"sleep": 30})
    worker = workers.consume("record")
    wait_until(lambda: Run.objects.filter(job_id=job.id).exists(), timeout=30, message="the job to start")
    worker.kill()
    Job.objects.filter(id=job.id).update(payload=b'{"sleep": 0}')  # the next run is quick
    workers.consume("record")
    wait_until(lambda: finished([job.id]), timeout=30, message="the job to run again after its lease")
    row = Job.objects.get(id=job.id)
    assert (row.status, row.rescues, row.failed_times, row.attempts) == ("done", 1, 1, 2)
    assert list(Run.objects.filter(job_id=job.id).order_by("id").values_list("finished", flat=True)) == [False, True]
    assert Attempt.objects.get(job_id=job.id).outcome == "lease_expired"


def test_a_worker_killed_between_pop_and_claim_loses_nothing(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    doomed = workers.consume("record", "--no-sweep", MEEPO_TEST_FAULT="die_after_pop")
    time.sleep(2)  # let it subscribe
    job = Job.objects.push("record", json={})
    assert doomed.wait(timeout=30) == 9, doomed.output()
    assert not Run.objects.filter(job_id=job.id).exists() and Job.objects.get(id=job.id).status == "todo"
    workers.consume("record")
    wait_until(lambda: finished([job.id]), timeout=40, message="the popped job to be recovered and run")
    assert runs([job.id]) == {job.id: 1}
    assert Job.objects.get(id=job.id).rescues == 0, "it was never claimed, so no lease had to expire"


def test_sigterm_lets_running_jobs_finish_hands_back_the_rest_and_exits_0(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    long = Job.objects.push("record", json={"sleep": 2})
    worker = workers.consume("record", "--parallel", "1", "--grace", "20")
    wait_until(lambda: Run.objects.filter(job_id=long.id).exists(), timeout=30, message="the long job to start")
    waiting = Job.objects.push_many("record", json=[{} for _ in range(5)])
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.output()
    assert Job.objects.get(id=long.id).status == "done", "the running job finished within the grace period"
    statuses = set(Job.objects.filter(id__in=[j.id for j in waiting]).values_list("status", flat=True))
    assert statuses <= {"todo", "done"} and not Job.objects.filter(status="doing").exists()


def test_a_job_still_running_after_the_grace_period_is_handed_back(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", json={"sleep": 30})
    worker = workers.consume("record", "--grace", "1")
    wait_until(lambda: Run.objects.filter(job_id=job.id).exists(), timeout=30, message="the job to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.output()
    row = Job.objects.get(id=job.id)
    assert (row.status, row.failed_times) == ("todo", 0)
    assert Attempt.objects.get(job_id=job.id).outcome == "released"


def test_a_second_signal_exits_at_once(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", json={"sleep": 30})
    worker = workers.consume("record", "--grace", "60")
    wait_until(lambda: Run.objects.filter(job_id=job.id).exists(), timeout=30, message="the job to start")
    worker.signal(signal.SIGTERM)
    time.sleep(0.5)
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=10) != 0
    assert Job.objects.get(id=job.id).status == "doing", "its lease brings it back"


def test_a_job_over_its_time_limit_gives_up_its_lease_and_the_process_is_replaced(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("limited", json={"sleep": 60})  # limit 1.5 s, max_failed_times 2
    worker = workers.consume("limited")
    wait_until(lambda: finished([job.id]), timeout=60, message="two time-limited runs")
    row = Job.objects.get(id=job.id)
    assert (row.status, row.failed_times, row.attempts) == ("failed", 2, 2)
    assert [a.outcome for a in Attempt.objects.filter(job_id=job.id)] == ["time_limit", "time_limit"]
    wait_until(lambda: worker.output().count("replacing the worker process") >= 1, timeout=10,
               message="the process to be replaced")
    assert worker.process is not None and worker.process.poll() is None, "the same pid runs on after exec"


def test_max_jobs_recycles_the_worker(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    jobs = Job.objects.push_many("record", json=[{} for _ in range(12)])
    worker = workers.consume("record", "--max-jobs", "5", "--no-recycle")
    assert worker.wait(timeout=60) == 75, worker.output()
    assert Job.objects.filter(id__in=[j.id for j in jobs], status="done").count() == 5
    assert not Job.objects.filter(status="doing").exists()


def test_killed_database_connections_of_a_worker_process(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    jobs = Job.objects.push_many("record", json=[{"sleep": 0.05} for _ in range(120)])
    ids = [j.id for j in jobs]
    worker = workers.consume("record")
    db = connection.settings_dict["NAME"]
    for _ in range(3):
        wait_until(lambda: Job.objects.filter(id__in=ids, status="done").count() > 10, timeout=60, message="progress")
        kill_connections(db)
        time.sleep(0.5)
    wait_until(lambda: finished(ids), timeout=90, message="every job after the kills")
    assert set(Job.objects.filter(id__in=ids).values_list("status", flat=True)) == {"done"}
    assert worker.process is not None and worker.process.poll() is None, worker.output()


def session_time_zone_env(offset: str) -> dict[str, str]:
    """The environment that makes a worker process's database sessions run at ``offset`` (checked here)."""
    if connection.vendor != "mysql":
        pytest.skip("MEEPO_DB_INIT_COMMAND is the testproject's MySQL init_command")
    env = {"MEEPO_DB_INIT_COMMAND": f"SET time_zone = '{offset}'"}
    probe = ("from django.db import connection\n"
             "with connection.cursor() as c:\n"
             "    c.execute('SELECT @@session.time_zone')\n"
             "    print(c.fetchone()[0])")
    seen = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", probe], cwd=ROOT, timeout=60,
                          env=subprocess_env(**env), capture_output=True, text=True, check=True).stdout.split()
    assert seen[-1:] == [offset], f"a worker's session would not be at {offset}: {seen}"
    return env


@pytest.mark.parametrize("offset", ["+05:00", "-05:00"])
def test_a_database_session_time_zone_other_than_utc_changes_nothing(offset, workers, redis,
                                                                     key_prefix) -> None:  # type: ignore[no-untyped-def]
    # East of UTC a comparison with the session's NOW() would expire leases and make jobs due hours early;
    # west of it, hours late (the waits below would time out).
    env = session_time_zone_env(offset)
    jobs = Job.objects.push_many("record", json=[{"sleep": 1.5}] * 4 + [{}] * 20)
    delayed = Job.objects.push("record", json={}, delay=3)
    ids = [j.id for j in jobs] + [delayed.id]
    workers.consume("record", **env)
    wait_until(lambda: finished(ids), timeout=60, message="every job, the delayed one included")
    assert runs(ids) == {i: 1 for i in ids}
    assert not Job.objects.filter(id__in=ids, rescues__gt=0).exists(), "no lease looked expired while renewed"
    row = Job.objects.get(id=delayed.id)
    assert row.status == "done" and row.started_at >= row.due_at, "the delayed job was not claimed early"
    assert Run.objects.get(job_id=delayed.id).created_at >= row.due_at


@pytest.mark.parametrize("offset", ["+05:00", "-05:00"])
def test_a_lease_expires_on_time_whatever_the_session_time_zone(offset, workers, redis,
                                                               key_prefix) -> None:  # type: ignore[no-untyped-def]
    env = session_time_zone_env(offset)
    job = Job.objects.push("record", json={"sleep": 30})
    worker = workers.consume("record", **env)
    wait_until(lambda: Run.objects.filter(job_id=job.id).exists(), timeout=30, message="the job to start")
    worker.kill()
    lease_until = Job.objects.get(id=job.id).lease_until  # nobody renews it any more
    Job.objects.filter(id=job.id).update(payload=b'{"sleep": 0}')
    workers.consume("record", **env)
    wait_until(lambda: finished([job.id]), timeout=40, message="the lease to expire and the job to run again")
    row = Job.objects.get(id=job.id)
    assert (row.status, row.rescues, row.failed_times, row.attempts) == ("done", 1, 1, 2)
    expiry = Attempt.objects.get(job_id=job.id)
    assert expiry.outcome == "lease_expired"
    assert expiry.finished_at > lease_until, "the lease was not taken before it ran out"


def test_redis_stopped_during_pushes_then_started_again(workers, private_redis) -> None:  # type: ignore[no-untyped-def]
    # The default configuration: the worker fails over to the table while Redis is down (and polls it for a
    # while after), so this shows that the jobs run, not that Redis gets them back: the next test does.
    worker = workers.consume("record")
    first = Job.objects.push_many("record", json=[{} for _ in range(10)])
    wait_until(lambda: finished([j.id for j in first]), timeout=60, message="the worker to consume")
    private_redis.stop()
    during = [Job.objects.push("record", json={}) for _ in range(20)]  # every push succeeds
    time.sleep(2)
    private_redis.start()
    ids = [j.id for j in first + during]
    wait_until(lambda: finished(ids), timeout=60, message="jobs pushed while Redis was down")
    assert runs(ids) == {i: 1 for i in ids}
    assert "claiming jobs straight from the database" in worker.output(), worker.output()


def redispatched(log: str, task: str) -> int:
    """How many jobs the sweeper reports it dispatched because Redis did not hold them."""
    pattern = rf"dispatched (\d+) due {re.escape(task)} job\(s\) that Redis did not hold"
    return sum(int(n) for n in re.findall(pattern, log))


def test_redis_stopped_during_pushes_the_sweeper_dispatches_what_it_missed(workers, private_redis) -> None:  # type: ignore[no-untyped-def]
    # A worker process on the Redis dispatcher alone: the jobs pushed while Redis was down can only reach it
    # through Redis, after its sweeper found them in the table and dispatched them again.
    worker = workers.consume("record", redis_only=True)
    first = [j.id for j in Job.objects.push_many("record", json=[{} for _ in range(10)])]
    wait_until(lambda: finished(first), timeout=60, message="jobs pushed while Redis is up")
    assert REDIS_ONLY_BANNER in worker.output(), worker.output()
    private_redis.stop()
    during = [Job.objects.push("record", json={}).id for _ in range(20)]  # every push succeeds
    wait_until(lambda: "dispatcher unavailable" in worker.output(), timeout=30, message="the worker to see it")
    time.sleep(1)
    assert not Run.objects.filter(job_id__in=during).exists(), "without failover nothing runs while Redis is down"
    before_restart = len(worker.output())
    private_redis.start()
    wait_until(lambda: finished(during), timeout=60, message="jobs pushed while Redis was down, via Redis")
    assert runs(during) == {i: 1 for i in during}
    log = worker.output()
    assert redispatched(log[before_restart:], "record") >= len(during), log
    assert "claiming jobs straight from the database" not in log, log
    assert worker.process is not None and worker.process.poll() is None, log


def test_redis_flushed_mid_run_with_two_worker_processes(workers, private_redis) -> None:  # type: ignore[no-untyped-def]
    jobs = Job.objects.push_many("record", json=[{"sleep": 0.02} for _ in range(400)])
    ids = [j.id for j in jobs]
    workers.consume("record", "--parallel", "2")
    workers.consume("record", "--parallel", "2")
    wait_until(lambda: Job.objects.filter(id__in=ids, status="done").count() >= 120, timeout=60, message="30 %")
    private_redis.client().flushall()
    wait_until(lambda: finished(ids), timeout=90, message="every job after the flush")
    assert set(Job.objects.filter(id__in=ids).values_list("status", flat=True)) == {"done"}
    assert runs(ids) == {i: 1 for i in ids}


def test_max_memory_recycles_the_worker(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    worker = workers.consume("record", "--max-memory", "1", "--no-recycle")
    assert worker.wait(timeout=60) == 75, worker.output()
    assert "--max-memory" in worker.output()
