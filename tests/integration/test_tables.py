"""A task's jobs in a table of its own (tables.py; Meepo's SetTableName): every verb acts on that table only.

Ids are unique per table: a job of the shared table and a job of an own table may carry the same id. The tests
make them collide on purpose (``colliding``) and check that each verb changed the row of its own table only.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count

from django_meepo import Job, api, operators, outbox
from django_meepo import statemachine as sm
from django_meepo.clock import db_now
from django_meepo.dispatch import database_dispatcher, new_dispatcher
from django_meepo.exceptions import JobNotFound
from django_meepo.models import AbstractJob, Attempt
from django_meepo.registry import get_task
from django_meepo.sweeper import Sweeper, source_of
from django_meepo.tables import for_task
from testproject.models import OwnAttempt, OwnJob, Run
from tests.support.fetching import fetch_claimed
from tests.support.inprocess import running_worker
from tests.support.services import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"
WORKER = "tables-worker"


def colliding(**spec: object) -> tuple[AbstractJob, AbstractJob]:
    """A job of ``record`` (meepo_job) and one of ``record_own`` (t_my_job_0831) with the same id: both tables'
    next id is moved to one past the larger of them first (each database has its own way)."""
    first = max(Job.objects.push("record", json={}).id, OwnJob.objects.push("record_own", json={}).id) + 1
    for model in (Job, OwnJob):
        next_id(model, first)
    shared = Job.objects.push("record", json={"t": "shared", **spec})
    own = OwnJob.objects.push("record_own", json={"t": "own", **spec})
    assert shared.id == own.id == first, (shared.id, own.id, first)
    return shared, own


def next_id(model: type[AbstractJob], value: int) -> None:
    """The id the next INSERT into ``model``'s table gets (test set-up: the code under test never does this)."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute(f"ALTER TABLE {connection.ops.quote_name(table)} AUTO_INCREMENT = {int(value)}")
        elif connection.vendor == "postgresql":
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, false)", [table, value])
        else:
            cursor.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [value - 1, table])


def state(model: type[AbstractJob], job_id: int) -> tuple[str, int]:
    row = model.objects.get(id=job_id)
    return row.status, row.cid


def test_a_task_with_a_model_keeps_its_jobs_in_that_table() -> None:
    assert (for_task("record_own").name, for_task("record").name) == ("t_my_job_0831", "meepo_job")
    job = Job.objects.push("record_own", json={})  # whichever manager: the task decides the table
    assert isinstance(job, OwnJob)
    assert OwnJob.objects.filter(id=job.id, task="record_own").exists()
    assert not Job.objects.filter(task="record_own").exists()
    many = OwnJob.objects.push_many("record_own", json=[{}, {}, {}])
    assert OwnJob.objects.filter(id__in=[j.id for j in many]).count() == 3
    again = OwnJob.objects.push("record_own", json={}, idempotency_key="k")
    assert OwnJob.objects.push("record_own", json={}, idempotency_key="k").id == again.id


def test_claim_and_finish_change_only_the_row_of_their_table(key_prefix: str) -> None:
    shared, own = colliding()
    [claimed] = sm.claim("record_own", [sm.Ref(own.id, 1)], worker=WORKER, lease_seconds=30, using=DB)
    assert json.loads(claimed.payload) == {"t": "own"}
    assert state(OwnJob, own.id) == ("doing", 2)
    assert state(Job, shared.id) == ("todo", 1)
    outcome = sm.finish_done("record_own", [claimed.ref], using=DB, results={own.id: "ok"})
    assert outcome.lost == []
    assert state(OwnJob, own.id) == ("done", 3) and OwnJob.objects.get(id=own.id).result == "ok"
    assert state(Job, shared.id) == ("todo", 1)


def test_a_failure_and_a_release_write_the_own_attempt_rows(key_prefix: str) -> None:
    shared, own = colliding()
    [claimed] = sm.claim("record_own", [sm.Ref(own.id, 1)], worker=WORKER, lease_seconds=30, using=DB)
    sm.finish_failed("record_own", claimed, get_task("record_own").options, error="boom", error_class="E",
                     worker=WORKER, using=DB)
    assert OwnJob.objects.get(id=own.id).failed_times == 1
    assert list(OwnAttempt.objects.filter(job_id=own.id).values_list("outcome", flat=True)) == ["failed"]
    assert not Attempt.objects.exists()
    assert state(Job, shared.id) == ("todo", 1)
    assert [a.outcome for a in OwnJob.objects.get(id=own.id).attempt_history()] == ["failed"]


def test_leases_progress_and_snooze_on_an_own_table(key_prefix: str) -> None:
    shared, own = colliding()
    [theirs] = sm.claim("record", [sm.Ref(shared.id, 1)], worker=WORKER, lease_seconds=30, using=DB)
    [mine] = sm.claim("record_own", [sm.Ref(own.id, 1)], worker=WORKER, lease_seconds=30, using=DB)
    assert sm.extend_leases([mine.ref], lease_seconds=60, using=DB, task="record_own") == set()
    assert OwnJob.objects.get(id=own.id).lease_until > Job.objects.get(id=shared.id).lease_until
    from django_meepo.progress import Progress

    assert sm.write_progress(mine.ref, Progress(1, 2, "half"), using=DB, task="record_own") is True
    assert (OwnJob.objects.get(id=own.id).progress_done, Job.objects.get(id=shared.id).progress_done) == (1, None)
    sm.snooze("record_own", mine, 60, worker=WORKER, using=DB)
    assert state(OwnJob, own.id) == ("todo", 3)
    assert state(Job, shared.id) == ("doing", theirs.cid)


def test_the_sweeper_rescues_expired_leases_of_an_own_table(key_prefix: str) -> None:
    shared, own = colliding()
    sm.claim("record", [sm.Ref(shared.id, 1)], worker=WORKER, lease_seconds=30, using=DB)
    sm.claim("record_own", [sm.Ref(own.id, 1)], worker=WORKER, lease_seconds=30, using=DB)
    past = db_now(DB) - timedelta(seconds=5)
    OwnJob.objects.filter(id=own.id).update(lease_until=past)
    outcome = sm.expire_leases("record_own", get_task("record_own").options, using=DB)
    assert [t.id for t in outcome.changed] == [own.id]
    row = OwnJob.objects.get(id=own.id)
    assert (row.status, row.rescues, row.failed_times) == ("todo", 1, 1)
    assert list(OwnAttempt.objects.filter(job_id=own.id).values_list("outcome", flat=True)) == ["lease_expired"]
    assert Job.objects.get(id=shared.id).status == "doing", "the shared job's live lease is not touched"
    assert sm.expire_leases("record", get_task("record").options, using=DB).found == 0


def test_the_sweeper_redispatches_own_table_jobs_that_redis_lost(redis: object, key_prefix: str) -> None:
    jobs = OwnJob.objects.push_many("record_own", json=[{} for _ in range(5)])
    outbox.flush()
    redis.flushdb()  # type: ignore[attr-defined]
    sweeper = Sweeper([get_task("record_own")], dispatcher=new_dispatcher(), using=DB, holder="t")
    assert sweeper.redispatch_lost(get_task("record_own"), db_now(DB), grace=None) == 5
    got = fetch_claimed(new_dispatcher(), [source_of(get_task("record_own"))], 10, worker=WORKER, using=DB)
    assert sorted(j.id for j in got) == sorted(j.id for j in jobs)


def test_the_database_dispatcher_polls_the_own_table(key_prefix: str) -> None:
    shared, own = colliding()
    d = database_dispatcher()
    try:
        got = fetch_claimed(d, [source_of(get_task("record_own"))], 100, worker=WORKER, using=DB)
        assert {(j.task, j.id) for j in got} == {("record_own", j.id) for j in OwnJob.objects.all()}
        assert own.id in {j.id for j in got}
        assert d.length("record_own", "") == 0
        assert Job.objects.get(id=shared.id).status == "todo"
    finally:
        d.close()


def test_operators_name_the_task_of_an_id(key_prefix: str) -> None:
    shared, own = colliding()
    done = operators.operator_commit(own.id, "done", task="record_own")
    assert (done.task, state(OwnJob, own.id), state(Job, shared.id)) == ("record_own", ("done", 2), ("todo", 1))
    api.repush(own.id, task="record_own")
    assert state(OwnJob, own.id) == ("todo", 3)
    assert list(OwnAttempt.objects.filter(job_id=own.id).values_list("outcome", flat=True)) == []  # never ran
    api.cancel(own.id, task="record_own")
    assert state(OwnJob, own.id)[0] == "cancelled" and state(Job, shared.id) == ("todo", 1)
    assert [t.id for t in api.repush_many([own.id], task="record_own")] == [own.id]
    assert api.cancel_many([own.id], task="record_own").cancelled[0].task == "record_own"
    api.repush(shared.id)  # no task: an id of the shared table, as before
    assert state(Job, shared.id) == ("todo", 2) and state(OwnJob, own.id)[0] == "cancelled"
    with pytest.raises(JobNotFound, match="of task 'other'"):
        api.repush(shared.id, task="other")  # the shared table holds it, but as a 'record' job
    with pytest.raises(JobNotFound, match="in t_my_job_0831"):
        api.repush(own.id + 10_000, task="record_own")


def test_a_worker_runs_colliding_ids_of_two_tables_each_once(redis: object, key_prefix: str) -> None:
    # Each run outlasts the lease (3 s): both jobs of a pair are held at once and their leases must be renewed.
    pairs = [colliding(sleep=4) for _ in range(3)]
    with running_worker("record", "record_own", parallel=8):
        wait_until(lambda: Job.objects.filter(status="done").count() + OwnJob.objects.filter(status="done").count()
                   == Job.objects.count() + OwnJob.objects.count(), timeout=90, message="every job to finish")
    runs = {(r["task"], r["job_id"]): r["n"] for r in Run.objects.values("task", "job_id").annotate(n=Count("id"))
            .order_by()}
    expected = {("record", i): 1 for i in Job.objects.values_list("id", flat=True)}
    expected.update({("record_own", i): 1 for i in OwnJob.objects.values_list("id", flat=True)})
    assert runs == expected, "every job of both tables ran exactly once"
    assert all(runs[("record", s.id)] == runs[("record_own", o.id)] == 1 for s, o in pairs)
    assert not Job.objects.filter(status="doing").exists() and not OwnJob.objects.filter(status="doing").exists()
