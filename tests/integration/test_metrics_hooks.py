"""The metrics hooks against the real database: each verb counts what it committed, at the commit, once.

Counters live in prometheus-client's default registry for the whole test process, so each test compares the
values before and after what it does (per task and outcome).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client, override_settings
from django.urls import path
from prometheus_client import REGISTRY

from django_meepo import Job
from django_meepo import statemachine as sm
from django_meepo.metrics import collectors, views
from django_meepo.registry import get_task
from tests.support.services import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"

urlpatterns = [path("metrics/", views.metrics)]  # this module is the URLconf of the view's tests


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def finished(task: str, outcome: str) -> float:
    return value("meepo_jobs_finished_total", task=task, outcome=outcome)


def claim(jobs: list[Job], task: str = "record") -> list[sm.ClaimedJob]:
    return sm.claim(task, [sm.Ref(j.id, j.cid) for j in jobs], worker="w", lease_seconds=30, using=DB)


def test_push_counts_at_the_commit_and_not_after_a_rollback() -> None:
    before = value("meepo_jobs_pushed_total", task="record")
    with transaction.atomic():
        Job.objects.push("record", b"a")
        Job.objects.push_many("record", [b"b", b"c"])
        assert value("meepo_jobs_pushed_total", task="record") == before, "counted before the commit"
    assert value("meepo_jobs_pushed_total", task="record") == before + 3
    with pytest.raises(RuntimeError), transaction.atomic():
        Job.objects.push("record", b"rolled back")
        raise RuntimeError("roll back")
    assert value("meepo_jobs_pushed_total", task="record") == before + 3
    Job.objects.push("record", b"k", idempotency_key="same")
    Job.objects.push("record", b"k", idempotency_key="same")  # returns the first: nothing inserted
    Job.objects.push_many("record", [b"u", b"u"], unique_keys=["one", "one"])  # one job holds the key
    assert value("meepo_jobs_pushed_total", task="record") == before + 5


def test_claim_counts_started_and_the_pickup_latency() -> None:
    started = value("meepo_jobs_started_total", task="other")
    count = value("meepo_job_pickup_latency_seconds_count", task="other")
    total = value("meepo_job_pickup_latency_seconds_sum", task="other")
    jobs = [Job.objects.push("other", b"a"), Job.objects.push("other", b"b")]
    past = jobs[0].due_at - timedelta(seconds=40)
    Job.objects.filter(id=jobs[0].id).update(due_at=past)  # due 40 s before it is claimed
    won = claim(jobs, "other")
    assert len(won) == 2 and all(j.due_at is not None for j in won)
    assert value("meepo_jobs_started_total", task="other") == started + 2
    assert value("meepo_job_pickup_latency_seconds_count", task="other") == count + 2
    assert 40 <= value("meepo_job_pickup_latency_seconds_sum", task="other") - total < 70
    assert claim(jobs, "other") == []  # stale refs win nothing and count nothing
    assert value("meepo_jobs_started_total", task="other") == started + 2


def test_each_verb_counts_its_outcome() -> None:
    options = get_task("record").options  # MAX_FAILED_TIMES 3
    before = {o: finished("record", o) for o in ("done", "failed", "retried", "snoozed", "released", "rescued")}
    a, b, c, d, e = claim([Job.objects.push("record", b"%d" % i) for i in range(5)])
    assert sm.finish_done("record", [a.ref], using=DB).won
    retry = sm.finish_failed("record", b, options, error="boom", error_class="x.E", worker="w", using=DB)
    assert retry.status == "todo"
    sm.snooze("record", c, 5, worker="w", using=DB)
    sm.release("record", [d], worker="w", using=DB, reason="test")
    Job.objects.filter(id=e.id).update(failed_times=2)  # its next failure is its 3rd: it ends failed
    last = sm.ClaimedJob(id=e.id, task="record", cid=e.cid, payload=b"", failed_times=2, attempts=1, priority=0,
                         started_at=e.started_at)
    assert sm.finish_failed("record", last, options, error="boom", error_class="x.E", worker="w",
                            using=DB).status == "failed"
    assert sm.finish_done("record", [a.ref], using=DB).lost  # stale: not counted again
    after = {o: finished("record", o) - before[o] for o in before}
    assert after == {"done": 1, "failed": 1, "retried": 1, "snoozed": 1, "released": 1, "rescued": 0}


def test_an_expired_lease_counts_rescued() -> None:
    before = finished("record", "rescued")
    [job] = claim([Job.objects.push("record", b"x")])
    Job.objects.filter(id=job.id).update(lease_until=job.started_at - timedelta(seconds=60))
    outcome = sm.expire_leases("record", get_task("record").options, using=DB)
    assert [t.id for t in outcome.changed] == [job.id]
    assert finished("record", "rescued") == before + 1
    assert sm.expire_leases("record", get_task("record").options, using=DB).changed == []
    assert finished("record", "rescued") == before + 1


def test_a_cancel_counts_cancelled_once() -> None:
    from django_meepo import api

    before = finished("record", "cancelled")
    queued = Job.objects.push("record", b"x")
    [running] = claim([Job.objects.push("record", b"y")])
    api.cancel(queued.id)
    outcome = api.cancel_many([running.id, queued.id])  # the queued one is refused: cancelled already
    assert [t.id for t in outcome.cancelled] == [running.id]
    assert finished("record", "cancelled") == before + 2


def test_a_verb_inside_a_rolled_back_transaction_counts_nothing() -> None:
    before = finished("record", "done")
    [job] = claim([Job.objects.push("record", b"x")])
    with pytest.raises(RuntimeError), transaction.atomic():
        sm.finish_done("record", [job.ref], using=DB)
        raise RuntimeError("roll back")
    assert finished("record", "done") == before
    assert Job.objects.get(id=job.id).status == "doing"


def test_queue_gauges_come_from_one_query_per_job_table(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    Job.objects.push_many("other", [b"1", b"2", b"3"])
    Job.objects.push("other", b"later", delay=3600)
    old = Job.objects.push("other", b"old")
    Job.objects.filter(id=old.id).update(due_at=old.due_at - timedelta(seconds=120))
    claim([Job.objects.push("other", b"running")], "other")
    from django_meepo import clock

    Job.objects.push("record_own", b"own")  # testproject.OwnJob: a table of its own
    clock.db_now(DB)  # the clock's anchor is measured already (a scrape then costs one query per table)
    with django_assert_num_queries(2):  # meepo_job, t_my_job_0831
        families = {f.name: f for f in collectors.QueueCollector().collect()}
    samples = {(f, s.labels.get("task")): s.value for f, fam in families.items() for s in fam.samples}
    assert samples[("meepo_queue_collect_up", None)] == 1
    assert samples[("meepo_queue_depth", "other")] == 4
    assert samples[("meepo_queue_scheduled", "other")] == 1
    assert samples[("meepo_jobs_running", "other")] == 1
    assert samples[("meepo_queue_depth", "record_own")] == 1
    assert 119 <= samples[("meepo_queue_oldest_due_age_seconds", "other")] < 200
    assert samples[("meepo_queue_depth", "record")] == 0  # every declared task is listed, empty ones at 0


@pytest.mark.urls(__name__)
def test_the_view_serves_the_exposition_with_the_queue_depth() -> None:
    Job.objects.push_many("other", [b"1", b"2"])
    Job.objects.push("record", b"x")
    response = Client().get("/metrics/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    assert 'meepo_queue_depth{task="other"} 2.0' in text
    assert 'meepo_queue_depth{task="record"} 1.0' in text
    assert "# TYPE meepo_jobs_pushed_total counter" in text
    assert 'meepo_jobs_pushed_total{task="other"}' in text
    assert "# TYPE meepo_job_duration_seconds histogram" in text
    assert 'meepo_worker_slots{state="total"}' in text
    assert Client().post("/metrics/").status_code == 405
    open_metrics = Client().get("/metrics/", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert open_metrics["Content-Type"].startswith("application/openmetrics-text")
    assert open_metrics.content.decode().rstrip().endswith("# EOF")


@pytest.mark.urls(__name__)
def test_the_view_in_multiprocess_mode_reads_every_process_files(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(collectors, "_registries", {})
    from prometheus_client import CollectorRegistry, Counter, values

    # What another process wrote to the directory: a counter in its own multiprocess file.
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: 4242))
    Counter("meepo_jobs_pushed", "pushed", ["task"], registry=CollectorRegistry()).labels("record").inc(7)
    Job.objects.push("record", b"x")
    text = Client().get("/metrics/").content.decode()
    assert 'meepo_jobs_pushed_total{task="record"} 7.0' in text
    assert 'meepo_queue_depth{task="record"} 1.0' in text


def test_the_process_gauges_show_a_running_workers_slots_and_dispatcher_mode() -> None:
    from tests.support.inprocess import running_worker

    with running_worker("record", parallel=3, sweep=False) as worker:
        wait_until(lambda: 'meepo_worker_slots{state="total"} 3.0' in _expose(), timeout=30,
                   message="the worker's slots in the gauge")
        text = _expose()
        assert 'meepo_dispatcher_mode{mode="redis"} 1.0' in text
        assert 'meepo_dispatcher_mode{mode="database"} 0.0' in text
        assert worker.capacity == 3
    assert 'meepo_worker_slots{state="total"} 0.0' in _expose()


def test_the_dispatcher_mode_is_database_with_the_database_dispatcher(settings) -> None:  # type: ignore[no-untyped-def]
    from tests.support.inprocess import running_worker

    with override_settings(MEEPO={**settings.MEEPO, "DISPATCH": "database"}), \
            running_worker("record", parallel=1, sweep=False):
        wait_until(lambda: 'meepo_worker_slots{state="total"} 1.0' in _expose(), timeout=30,
                   message="the worker's slots in the gauge")
        text = _expose()
    assert 'meepo_dispatcher_mode{mode="database"} 1.0' in text


def _expose() -> str:
    from prometheus_client import generate_latest

    return generate_latest(collectors.scrape_registry()).decode()
