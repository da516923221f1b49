"""A worker in a thread of the test process, against the real MariaDB and Redis."""

from __future__ import annotations

import logging
import time

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.test import override_settings
from django.utils import timezone

from django_meepo import Job, inserts
from django_meepo import statemachine as sm
from django_meepo.dispatch import redis_dispatcher
from django_meepo.dispatch.redis import RedisDispatcher, dispatched_key, queued_entries
from django_meepo.dispatch.redis import epoch_key as redis_epoch_key
from django_meepo.models import Attempt
from django_meepo.sweeper import Sweeper, SweepReport
from testproject.models import Run
from tests.support.inprocess import running_worker
from tests.support.services import kill_connections, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def all_finished(ids: list[int]) -> bool:
    return Job.objects.filter(id__in=ids, status__in=["done", "failed"]).count() == len(ids)


def runs_per_job(ids: list[int]) -> dict[int, int]:
    return dict(Run.objects.filter(job_id__in=ids).values_list("job_id").annotate(n=Count("id")).order_by())


def test_round_trip_every_job_runs_once(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    jobs = Job.objects.push_many("record", json=[{} for _ in range(200)])
    ids = [j.id for j in jobs]
    with running_worker("record", parallel=4):
        wait_until(lambda: all_finished(ids), timeout=60, message="200 jobs to finish")
    assert set(Job.objects.filter(id__in=ids).values_list("status", flat=True)) == {"done"}
    assert runs_per_job(ids) == {i: 1 for i in ids}
    assert not Job.objects.filter(status="doing").exists()


def test_a_job_pushed_to_an_idle_worker_starts_at_once(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    with running_worker("record", parallel=1):
        wait_until(lambda: Job.objects.count() == 0, message="worker start")  # trivially true; let it subscribe
        import time

        time.sleep(0.5)
        job = Job.objects.push("record", json={})
        wait_until(lambda: Job.objects.filter(id=job.id, status="done").exists(), timeout=5,
                   message="the job to run without waiting for a sweep")


def test_a_failing_job_is_retried_with_backoff_until_it_succeeds(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", json={"fail_until": 3})
    with running_worker("record"):
        wait_until(lambda: all_finished([job.id]), timeout=30, message="the job to succeed on its 3rd attempt")
    row = Job.objects.get(id=job.id)
    assert (row.status, row.failed_times, row.attempts) == ("done", 2, 3)
    errors = list(Attempt.objects.filter(job_id=job.id).order_by("number").values_list("number", "error_class"))
    assert errors == [(1, "builtins.RuntimeError"), (2, "builtins.RuntimeError")]
    assert "planned failure" in Attempt.objects.filter(job_id=job.id).first().error
    assert [a.outcome for a in row.attempt_history()] == ["failed", "failed", "done"]


def test_a_job_that_always_fails_ends_failed_on_its_nth_failure(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", json={"fail": True})
    with running_worker("record"):
        wait_until(lambda: all_finished([job.id]), timeout=30, message="the job to fail for good")
    row = Job.objects.get(id=job.id)
    assert (row.status, row.failed_times, row.attempts) == ("failed", 3, 3)
    assert "Traceback" in row.last_error and "planned failure" in row.last_error


@pytest.mark.parametrize(("commit", "status", "failed_times"), [("done", "done", 0), ("failed", "failed", 1)])
def test_manual_mode_commits(commit, status, failed_times, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("manual", json={"commit": commit})
    with running_worker("manual"):
        wait_until(lambda: all_finished([job.id]), timeout=30, message=f"manual commit {commit}")
    row = Job.objects.get(id=job.id)
    assert (row.status, row.failed_times, row.attempts) == (status, failed_times, 1)


def test_manual_commit_todo_runs_the_job_again(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("manual", json={"commit": "todo", "then": "done"})
    with running_worker("manual"):
        wait_until(lambda: all_finished([job.id]), timeout=30, message="a todo commit, then done")
    row = Job.objects.get(id=job.id)
    assert (row.status, row.attempts, row.failed_times) == ("done", 2, 1)
    assert runs_per_job([job.id]) == {job.id: 2}


def test_manual_job_that_forgets_to_commit_counts_a_failure(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("manual", json={"commit": None})
    with running_worker("manual"):
        wait_until(lambda: all_finished([job.id]), timeout=30, message="the forgetful job to fail")
    row = Job.objects.get(id=job.id)
    assert row.status == "failed" and "returned without committing" in row.last_error
    assert "never called job.commit()" in row.last_error
    classes = set(Attempt.objects.filter(job_id=job.id).values_list("error_class", flat=True))
    assert classes == {"django_meepo.exceptions.ReturnedWithoutCommit"}, "no commit was refused"


def test_a_long_job_keeps_its_lease_by_heartbeats(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # Lease 3 s, heartbeat 1 s: a 6-second job must run once, not be rescued (Meepo's weakness 1).
    job = Job.objects.push("record", json={"sleep": 6})
    with running_worker("record"):
        wait_until(lambda: all_finished([job.id]), timeout=30, message="the long job")
    row = Job.objects.get(id=job.id)
    assert (row.status, row.rescues, row.attempts) == ("done", 0, 1)
    assert runs_per_job([job.id]) == {job.id: 1}


def test_higher_priority_jobs_are_popped_first(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    low = Job.objects.push_many("record", json=[{} for _ in range(5)], priority=-60)
    high = Job.objects.push("record", json={}, priority=80)
    with running_worker("record", parallel=1):
        wait_until(lambda: all_finished([j.id for j in low] + [high.id]), timeout=30, message="all jobs")
    order = list(Run.objects.order_by("id").values_list("job_id", flat=True))
    assert order[0] == high.id


def test_a_backlog_on_one_task_does_not_starve_another(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    backlog = Job.objects.push_many("record", json=[{"sleep": 0.02} for _ in range(150)])
    few = Job.objects.push_many("other", json=[{} for _ in range(4)])
    with running_worker("record", "other", parallel=2):
        wait_until(lambda: all_finished([j.id for j in few]), timeout=30, message="the other task's jobs")
        backlog_done = Job.objects.filter(id__in=[j.id for j in backlog], status="done").count()
    assert backlog_done < 100, f"the other task waited for {backlog_done} backlog jobs"


def test_redis_flushed_mid_run_loses_nothing(private_redis) -> None:  # type: ignore[no-untyped-def]
    jobs = Job.objects.push_many("record", json=[{"sleep": 0.01} for _ in range(300)])
    ids = [j.id for j in jobs]
    with running_worker("record", parallel=4):
        wait_until(lambda: Job.objects.filter(id__in=ids, status="done").count() >= 90, timeout=60,
                   message="a third of the jobs")
        private_redis.client().flushall()
        wait_until(lambda: all_finished(ids), timeout=60, message="every job after the flush")
    assert set(Job.objects.filter(id__in=ids).values_list("status", flat=True)) == {"done"}
    assert runs_per_job(ids) == {i: 1 for i in ids}, "no job ran twice: none had begun twice"


def test_redis_down_at_push_time_then_back(private_redis) -> None:  # type: ignore[no-untyped-def]
    # Meepo asked the producer to resend when the Redis push failed (weakness 3). Here the push succeeds.
    # The default configuration: the worker's failover dispatcher may claim these jobs from the table, so this
    # does not show that Redis gets them back; test_redis_stopped_during_pushes_the_sweeper_dispatches_... does.
    private_redis.stop()
    jobs = [Job.objects.push("record", json={}) for _ in range(20)]
    ids = [j.id for j in jobs]
    assert Job.objects.filter(id__in=ids, status="todo").count() == 20
    with running_worker("record"):
        private_redis.start()
        wait_until(lambda: all_finished(ids), timeout=60, message="jobs pushed while Redis was down")
    assert runs_per_job(ids) == {i: 1 for i in ids}


def test_killed_database_connections_do_not_stop_the_worker(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    jobs = Job.objects.push_many("record", json=[{"sleep": 0.02} for _ in range(200)])
    ids = [j.id for j in jobs]
    db_name = connection.settings_dict["NAME"]
    killed = 0
    with running_worker("record", parallel=4):
        for _ in range(3):
            wait_until(lambda: Job.objects.filter(id__in=ids, status="done").count() > 20, timeout=60,
                       message="progress")
            killed += kill_connections(db_name)
        wait_until(lambda: all_finished(ids), timeout=90, message="every job after the kills")
    assert killed > 0
    assert set(Job.objects.filter(id__in=ids).values_list("status", flat=True)) == {"done"}
    assert not Job.objects.filter(status="doing").exists()


def test_a_transaction_left_open_by_a_job_is_rolled_back_between_jobs(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    jobs = Job.objects.push_many("leaky", json=[{} for _ in range(3)])
    ids = [j.id for j in jobs]
    with running_worker("leaky", parallel=1):
        wait_until(lambda: all_finished(ids), timeout=30, message="the leaky jobs")
        assert Job.objects.filter(id__in=ids, status="done").count() == 3
    assert Run.objects.filter(job_id__in=ids).count() == 0, "what the jobs left uncommitted was rolled back"


# ------------------------------------------------------------------------------------------- Redis back, no failover

def recording_redis_dispatchers(sent: list[int]):  # type: ignore[no-untyped-def]
    """A dispatcher factory for a Worker: the Redis dispatcher alone (no failover to the table), recording the
    ids each of its dispatchers dispatched. A worker's fetching dispatcher never dispatches; its sweeper's does."""
    def factory() -> RedisDispatcher:
        dispatcher = redis_dispatcher()
        dispatch = dispatcher.dispatch

        def recorded(items, **kwargs):  # type: ignore[no-untyped-def]
            dispatch(items, **kwargs)
            sent.extend(item.id for item in items)

        dispatcher.dispatch = recorded  # type: ignore[method-assign]
        return dispatcher

    return factory


@pytest.fixture
def sweep_reports(monkeypatch) -> list[SweepReport]:  # type: ignore[no-untyped-def]
    """Every report of the sweepers that workers start in this test."""
    reports: list[SweepReport] = []

    class RecordingSweeper(Sweeper):
        def tick(self, *args, **kwargs) -> SweepReport:  # type: ignore[no-untyped-def]
            report = super().tick(*args, **kwargs)
            reports.append(report)
            return report

    monkeypatch.setattr("django_meepo.worker.Sweeper", RecordingSweeper)
    return reports


@pytest.mark.parametrize("keeps_data", [False, True], ids=["restarted-empty", "restarted-with-its-data"])
def test_redis_stopped_during_pushes_the_sweeper_dispatches_what_it_missed(private_redis, sweep_reports,
                                                                           keeps_data) -> None:  # type: ignore[no-untyped-def]
    # Without failover nothing reaches this worker but Redis entries: the jobs pushed while Redis was down can
    # only run if the sweeper finds them in the table and dispatches them once Redis answers again — all of
    # them when Redis came back empty (its epoch key is gone), or those its record lacks when it kept its data.
    sent: list[int] = []
    with running_worker("record", dispatcher_factory=recording_redis_dispatchers(sent)) as worker:
        assert type(worker.dispatcher) is RedisDispatcher
        first = [j.id for j in Job.objects.push_many("record", json=[{} for _ in range(10)])]
        wait_until(lambda: all_finished(first), timeout=30, message="jobs pushed while Redis is up")
        wait_until(lambda: any(r.full_scan for r in sweep_reports), timeout=30,
                   message="the sweeper's first sweep while Redis is up (it writes Redis's epoch key)")
        epoch_key = redis_epoch_key(settings.MEEPO["KEY_PREFIX"], "record")
        epoch = private_redis.client().get(epoch_key)
        assert epoch is not None
        private_redis.stop(keep_data=keeps_data)  # kept: the restart loads its dump (epoch key and records)
        during = [Job.objects.push("record", json={}).id for _ in range(20)]  # every push succeeds
        assert Job.objects.filter(id__in=during, status="todo").count() == 20
        time.sleep(1.5)
        assert not Run.objects.filter(job_id__in=during).exists(), "without failover nothing runs while Redis is down"
        since_outage = len(sweep_reports)
        private_redis.start()
        # Restarted empty, the epoch key is gone (or already written anew by the sweeper); kept, it is the same.
        assert (private_redis.client().get(epoch_key) == epoch) is keeps_data
        wait_until(lambda: all_finished(during), timeout=60, message="jobs pushed while Redis was down, via Redis")
    assert set(Job.objects.filter(id__in=during).values_list("status", flat=True)) == {"done"}
    assert runs_per_job(during) == {i: 1 for i in during}
    assert set(during) <= set(sent), "the worker's sweeper dispatched every job Redis had missed"
    after = sweep_reports[since_outage:]
    assert sum(r.redispatched for r in after) >= len(during)
    assert any(r.full_scan for r in after) is not keeps_data, \
        "a full scan when Redis lost everything; the record's scan alone when it kept its data"
    assert not Job.objects.filter(status="doing").exists()


# ------------------------------------------------------------------------------------------- a task from another deploy

GHOST = "from-a-newer-deploy"


def test_an_entry_of_a_task_this_deploy_does_not_know_reaches_the_worker_and_is_left_alone(  # type: ignore[no-untyped-def]
        redis, key_prefix, monkeypatch, caplog) -> None:
    # A newer deploy pushed a job of a task this deploy does not know: the row, its entry in its own queue and
    # the record of it, as push does. A worker that does not know the task never pops that queue, so an entry
    # for it is also put in the queue this worker pops (what a bad route or a key collision would do).
    now = timezone.now()
    [ghost] = inserts.insert("default", [inserts.NewJob(GHOST, b"{}", 0, None, now, now)])
    dispatcher = redis_dispatcher()
    dispatcher.dispatch([sm.Dispatchable(GHOST, ghost, 1, 0)])
    dispatcher.dispatch([sm.Dispatchable("record", ghost, 1, 0)])
    known = [j.id for j in Job.objects.push_many("record", json=[{} for _ in range(3)])]  # queued behind the ghost
    claims: list[tuple[str, list[sm.Ref]]] = []
    claim = sm.claim

    def spy(task, refs, **kwargs):  # type: ignore[no-untyped-def]
        claims.append((task, list(refs)))
        return claim(task, refs, **kwargs)

    monkeypatch.setattr("django_meepo.statemachine.claim", spy)
    with caplog.at_level(logging.WARNING, logger="django_meepo"), running_worker("record", parallel=2):
        wait_until(lambda: all_finished(known), timeout=30, message="the known jobs queued behind the ghost")
        assert any(sm.Ref(ghost, 1) in refs for _, refs in claims), "the ghost's entry reached the worker"
        later = Job.objects.push("record", json={}).id
        wait_until(lambda: all_finished([later]), timeout=30, message="a job pushed after the ghost was popped")
    assert set(Job.objects.filter(id__in=[*known, later]).values_list("status", flat=True)) == {"done"}
    row = Job.objects.get(id=ghost)
    assert (row.status, row.cid, row.attempts, row.failed_times, row.worker, row.started_at, row.last_error) == \
        ("todo", 1, 0, 0, "", None, ""), "left alone: not claimed, not failed"
    assert not Attempt.objects.filter(job_id=ghost).exists() and not Run.objects.filter(job_id=ghost).exists()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "the worker's loop never failed"
    assert queued_entries(redis, key_prefix, "record") == []
    assert redis.hget(dispatched_key(key_prefix, "record"), str(ghost)) is None, "its stray entry was dropped"
    own_queue = queued_entries(redis, key_prefix, GHOST)
    assert own_queue == [f"{ghost}:1".encode()], "its own entry waits for a worker that knows the task"
    assert redis.hget(dispatched_key(key_prefix, GHOST), str(ghost)) == b"1"

    # The newer deploy's worker runs it, once.
    newer = {**settings.MEEPO["TASKS"], GHOST: {"FUNCTION": "testproject.jobs.record", "LEASE_TIMEOUT": 3,
                                                "HEARTBEAT": 1, "SWEEP_PERIOD": 1}}
    with override_settings(MEEPO={**settings.MEEPO, "TASKS": newer}), running_worker(GHOST):
        wait_until(lambda: all_finished([ghost]), timeout=30, message="the newer deploy's worker to run the ghost")
    assert Job.objects.get(id=ghost).status == "done"
    assert runs_per_job([ghost]) == {ghost: 1}
