"""Pushing: INSERT in the caller's transaction, dispatch after commit, never raise for a failed dispatch."""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from django_meepo import ConfigurationError, InvalidPayload, Job, UnknownTask, inserts, outbox, registry
from django_meepo import task as meepo_task
from django_meepo.dispatch import producer_dispatcher
from django_meepo.dispatch.redis import dispatched_key, queued_entries
from django_meepo.inserts import NewJob

pytestmark = pytest.mark.django_db(transaction=True)


def queued(redis, prefix: str, task: str = "record") -> list[bytes]:  # type: ignore[no-untyped-def]
    return queued_entries(redis, prefix, task)


def test_push_inserts_now_and_dispatches_after_commit(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    with transaction.atomic():
        job = Job.objects.push("record", json={"n": 1})
        assert Job.objects.filter(id=job.id, status="todo", cid=1).exists()
        assert queued(redis, key_prefix) == [], "nothing may reach Redis before the commit"
    assert queued(redis, key_prefix) == [f"{job.id}:1".encode()]
    assert redis.hget(dispatched_key(key_prefix, "record"), str(job.id)) == b"1"
    assert json.loads(bytes(Job.objects.get(id=job.id).payload)) == {"n": 1}


def test_rollback_dispatches_nothing(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError), transaction.atomic():
        Job.objects.push("record", b"x")
        raise RuntimeError("roll back")
    assert Job.objects.count() == 0
    assert queued(redis, key_prefix) == []
    # The next transaction starts clean: only its own job is dispatched.
    with transaction.atomic():
        job = Job.objects.push("record", b"y")
    assert queued(redis, key_prefix) == [f"{job.id}:1".encode()]


def test_one_coalesced_dispatch_per_transaction(redis, key_prefix, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    dispatcher = producer_dispatcher()
    calls: list[int] = []
    original = dispatcher.dispatch
    monkeypatch.setattr(dispatcher, "dispatch", lambda items, **kw: (calls.append(len(items)), original(items, **kw)))
    with transaction.atomic():
        jobs = [Job.objects.push("record", b"%d" % i) for i in range(100)]
    outbox.flush()
    assert calls == [100]
    assert len(queued(redis, key_prefix)) == 100
    assert {int(e.split(b":")[0]) for e in queued(redis, key_prefix)} == {j.id for j in jobs}


def test_push_without_transaction_dispatches_at_once(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"now")
    assert queued(redis, key_prefix) == [f"{job.id}:1".encode()]


def test_delayed_job_is_not_dispatched_until_due(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"later", delay=60)
    assert queued(redis, key_prefix) == []
    assert (job.due_at - timezone.now()).total_seconds() > 55


def test_failed_dispatch_never_reaches_the_caller(private_redis, caplog) -> None:  # type: ignore[no-untyped-def]
    private_redis.stop()
    with caplog.at_level(logging.WARNING, logger="django_meepo"):
        with transaction.atomic():
            job = Job.objects.push("record", b"while redis is down")
        outbox.flush()  # the dispatch happens on the outbox's thread, after the commit
    assert Job.objects.filter(id=job.id, status="todo").exists()
    assert any("not dispatched" in r.getMessage() and "sweeper" in r.getMessage() for r in caplog.records)


def test_idempotency_key_returns_the_existing_job(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    first = Job.objects.push("record", b"a", idempotency_key="order-1")
    second = Job.objects.push("record", b"b", idempotency_key="order-1")
    assert second.id == first.id
    assert Job.objects.count() == 1
    assert queued(redis, key_prefix) == [f"{first.id}:1".encode()]
    other_task = Job.objects.push("other", b"c", idempotency_key="order-1")
    assert other_task.id != first.id


def test_idempotency_key_inside_a_transaction(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    with transaction.atomic():
        first = Job.objects.push("record", b"a", idempotency_key="k")
        again = Job.objects.push("record", b"a", idempotency_key="k")
    assert first.id == again.id
    assert Job.objects.count() == 1


def test_push_many_reads_ids_back_and_dispatches_once(redis, key_prefix, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    dispatcher = producer_dispatcher()
    calls: list[int] = []
    original = dispatcher.dispatch
    monkeypatch.setattr(dispatcher, "dispatch", lambda items, **kw: (calls.append(len(items)), original(items, **kw)))
    monkeypatch.setattr("django_meepo.push.BULK_ROWS", 70)  # several INSERTs
    jobs = Job.objects.push_many("record", json=[{"i": i} for i in range(250)])
    outbox.flush()
    assert calls == [250]
    rows = dict(Job.objects.values_list("id", "payload"))
    assert len(rows) == 250
    for i, job in enumerate(jobs):
        assert json.loads(bytes(rows[job.id])) == {"i": i}


# ------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"task": "nope", "payload": b"x"}, UnknownTask, "unknown task 'nope'"),
        ({"task": "record", "payload": "text"}, InvalidPayload, "payload must be bytes"),
        ({"task": "record", "payload": 12}, InvalidPayload, "not int"),
        ({"task": "record", "payload": b"x", "json": {}}, InvalidPayload, "not both"),
        ({"task": "record", "json": {1, 2}}, InvalidPayload, "not JSON-serialisable"),
        ({"task": "record", "json": float("nan")}, InvalidPayload, "not JSON-serialisable"),
        ({"task": "record", "payload": b"x" * (1024 * 1024 + 1)}, InvalidPayload, "over the limit"),
        ({"task": "record", "payload": b"x", "priority": 101}, ValueError, "priority must be an integer"),
        ({"task": "record", "payload": b"x", "priority": "high"}, ValueError, "priority must be an integer"),
        ({"task": "record", "payload": b"x", "delay": -1}, ValueError, "delay must not be negative"),
        ({"task": "record", "payload": b"x", "delay": "soon"}, ValueError, "delay must be a number"),
        ({"task": "record", "payload": b"x", "idempotency_key": ""}, ValueError, "idempotency_key"),
        ({"task": "record", "payload": b"x", "using": "nodb"}, ConfigurationError, "'nodb' is not in DATABASES"),
    ],
)
def test_bad_input_is_named_and_writes_nothing(redis, key_prefix, kwargs, error, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=fragment):
        Job.objects.push(**kwargs)
    assert Job.objects.count() == 0
    assert queued(redis, key_prefix) == []


def test_push_many_checks_every_payload_before_writing(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidPayload, match="payload must be bytes"):
        Job.objects.push_many("record", [b"ok", b"ok", "not bytes"])
    assert Job.objects.count() == 0


def test_naive_due_at_is_refused(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    import datetime

    with pytest.raises(ValueError, match="timezone-aware"):
        Job.objects.push("record", b"x", due_at=datetime.datetime(2030, 1, 1))
    assert Job.objects.count() == 0


# ------------------------------------------------------------------------------------------- a misconfigured task

def _pushes(task: str) -> list:  # type: ignore[type-arg]
    """Every way to push: one job, many jobs, with an idempotency key, delayed, inside a transaction."""
    def in_transaction() -> None:
        with transaction.atomic():
            Job.objects.push(task, json={})

    return [lambda: Job.objects.push(task, json={}), lambda: Job.objects.push_many(task, json=[{}, {}, {}]),
            lambda: Job.objects.push(task, json={}, idempotency_key="once"),
            lambda: Job.objects.push(task, json={}, delay=5), in_transaction]


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"PARALLEL": 0}, "PARALLEL must be an integer >= 1, not 0"),
        ({"ZOMBIE_STATUS": "doing"}, "ZOMBIE_STATUS must be one of"),
        ({"LEASE_TIMEOUT": "30"}, "LEASE_TIMEOUT must be a number of seconds > 0, not '30'"),
        ({"LEASE_TIMEOUT": 3, "HEARTBEAT": 5}, "HEARTBEAT (5) must be shorter than LEASE_TIMEOUT (3)"),
        ({"RETRIES": 3}, "unknown option 'RETRIES'"),
    ],
)
def test_pushing_to_a_task_declared_with_a_bad_option_is_named_and_writes_nothing(redis, key_prefix, entry,
                                                                                  fragment) -> None:  # type: ignore[no-untyped-def]
    tasks = {**settings.MEEPO["TASKS"], "misconfigured": {"FUNCTION": "testproject.jobs.demo", **entry}}
    with override_settings(MEEPO={**settings.MEEPO, "TASKS": tasks}):
        for push in _pushes("misconfigured"):
            with pytest.raises(ConfigurationError, match=re.escape(f"task 'misconfigured': {fragment}")):
                push()
    assert Job.objects.count() == 0
    assert queued(redis, key_prefix, "misconfigured") == []


def test_a_bad_option_in_settings_for_a_decorated_task_makes_its_pushes_fail(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # MEEPO["TASKS"]["record"] only tunes the @task("record") declaration; a bad value there must not be
    # silently replaced by the decorator's or the default value.
    tasks = {**settings.MEEPO["TASKS"], "record": {"SWEEP_LIMIT": -1}}
    with override_settings(MEEPO={**settings.MEEPO, "TASKS": tasks}):
        for push in _pushes("record"):
            with pytest.raises(ConfigurationError, match=re.escape("task 'record': SWEEP_LIMIT must be an integer")):
                push()
    assert Job.objects.count() == 0
    assert queued(redis, key_prefix) == []


def test_a_bad_default_option_makes_every_push_fail(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    with override_settings(MEEPO={**settings.MEEPO, "DEFAULTS": {"MAX_FAILED_TIMES": -2}}):
        for task in ("record", "demo"):
            for push in _pushes(task):
                with pytest.raises(ConfigurationError, match=re.escape("MAX_FAILED_TIMES must be an integer >= 0")):
                    push()
    assert Job.objects.count() == 0
    assert queued(redis, key_prefix) == [] and queued(redis, key_prefix, "demo") == []


@pytest.fixture
def decorated_with_a_bad_option() -> Iterator[str]:
    """A task declared by ``@task`` with a bad option (the decorator itself only records it, for the checks)."""
    name = "decorated-misconfigured"
    meepo_task(name, parallel=0, lease_timeout=3, heartbeat=1)(lambda job: None)
    try:
        yield name
    finally:
        registry._decorated.pop(name, None)
        registry.clear_cache()


def test_pushing_to_a_task_decorated_with_a_bad_option_is_named_and_writes_nothing(
        redis, key_prefix, decorated_with_a_bad_option) -> None:  # type: ignore[no-untyped-def]
    name = decorated_with_a_bad_option
    for push in _pushes(name):
        with pytest.raises(ConfigurationError, match=re.escape(f"task {name!r}: PARALLEL must be an integer >= 1")):
            push()
    assert Job.objects.count() == 0
    assert queued(redis, key_prefix, name) == []


# ------------------------------------------------------------------------------------------- ids of a bulk INSERT

def _can_return_rows() -> bool:
    return bool(connection.features.can_return_rows_from_bulk_insert)


@pytest.fixture(params=["returning", "read-back"])
def id_path(request, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    """Both ways ``inserts.insert`` learns the ids of a multi-row INSERT.

    ``returning``: ``INSERT … RETURNING id`` (MariaDB 10.5+, PostgreSQL, SQLite 3.35+). ``read-back``: the
    statement's ``lastrowid`` (the first id on MySQL, the last on SQLite), then the rows carrying the statement's
    token from there — the path of a backend that cannot return rows from a bulk insert (MySQL, SQLite < 3.35),
    forced here by turning the feature flag off (a class-level property on MySQL and SQLite: the class is patched).
    """
    if request.param == "returning":
        if not _can_return_rows():
            pytest.skip(f"this {connection.vendor} server cannot return rows from a bulk insert")
        return "returning"
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL always returns rows from a bulk insert (the read-back path is for MySQL)")
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    assert not _can_return_rows()
    return "read-back"


@pytest.fixture
def spaced_ids() -> Iterator[int]:
    """Ids 7 apart on this session (MySQL/MariaDB), so that code assuming consecutive ids would pair them wrongly."""
    if connection.vendor != "mysql":
        yield 1
        return
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION auto_increment_increment = 7")
    try:
        yield 7
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION auto_increment_increment = 1")


def test_push_many_pairs_every_id_with_its_payload(id_path, spaced_ids, redis, key_prefix,  # type: ignore[no-untyped-def]
                                                   monkeypatch) -> None:
    before = Job.objects.push("record", json={"before": True})  # ids of the batch do not start at 1
    monkeypatch.setattr("django_meepo.push.BULK_ROWS", 40)  # several INSERTs in the batch's transaction
    jobs = Job.objects.push_many("record", json=[{"i": i} for i in range(100)])
    ids = [j.id for j in jobs]
    assert len(set(ids)) == 100
    rows = dict(Job.objects.filter(id__in=ids).values_list("id", "payload"))
    assert [json.loads(bytes(rows[i])) for i in ids] == [{"i": i} for i in range(100)], "each id is its own row"
    assert [json.loads(bytes(j.payload)) for j in jobs] == [{"i": i} for i in range(100)]
    assert ids == sorted(ids) and {b - a for a, b in itertools.pairwise(ids)} == {spaced_ids}
    assert queued(redis, key_prefix) == [f"{i}:1".encode() for i in [before.id, *ids]], "the right ids dispatched"


def test_a_bulk_insert_of_rows_that_differ_reads_back_every_id(id_path, spaced_ids, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # push_many's rows share everything but the payload (MySQL's fast path); inserts.insert also takes rows of
    # different tasks, priorities and due times in one statement.
    now = timezone.now()
    news = [NewJob(task=("record", "other")[i % 2], payload=b"%d" % i, priority=i - 3, idempotency_key=f"k{i}",
                   created_at=now, due_at=now + timedelta(seconds=i)) for i in range(7)]
    ids = inserts.insert("default", news)
    assert len(set(ids)) == 7
    rows = {r[0]: r[1:] for r in Job.objects.filter(id__in=ids).values_list(
        "id", "task", "payload", "priority", "idempotency_key", "due_at", "status", "cid", "token")}
    for job_id, new in zip(ids, news, strict=True):
        task, payload, priority, key, due, status, cid, _token = rows[job_id]
        assert (task, bytes(payload), priority, key, due, status, cid) == (
            new.task, new.payload, new.priority, new.idempotency_key, new.due_at, "todo", 1)
    assert len({r[-1] for r in rows.values()}) == 1, "one statement, one token"


def test_a_single_row_insert_returns_its_id(id_path, spaced_ids, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    first = Job.objects.push("record", b"a")
    second = Job.objects.push("record", b"b")
    assert second.id - first.id == spaced_ids
    assert bytes(Job.objects.get(id=second.id).payload) == b"b"
