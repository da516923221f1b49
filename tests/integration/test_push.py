"""Pushing: INSERT in the caller's transaction, dispatch after commit, never raise for a failed dispatch."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import transaction
from django.utils import timezone

from django_meepo import ConfigurationError, InvalidPayload, Job, UnknownTask
from django_meepo.dispatch import producer_dispatcher
from django_meepo.dispatch.redis import dispatched_key, queue_keys

pytestmark = pytest.mark.django_db(transaction=True)


def queued(redis, prefix: str, task: str = "record") -> list[bytes]:  # type: ignore[no-untyped-def]
    return [e for key in queue_keys(prefix, task) for e in redis.lrange(key, 0, -1)]


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
    monkeypatch.setattr(dispatcher, "dispatch", lambda items: (calls.append(len(items)), original(items)))
    with transaction.atomic():
        jobs = [Job.objects.push("record", b"%d" % i) for i in range(100)]
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
    with caplog.at_level(logging.WARNING, logger="django_meepo"), transaction.atomic():
        job = Job.objects.push("record", b"while redis is down")
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
    monkeypatch.setattr(dispatcher, "dispatch", lambda items: (calls.append(len(items)), original(items)))
    monkeypatch.setattr("django_meepo.push.BULK_ROWS", 70)  # several INSERTs
    jobs = Job.objects.push_many("record", json=[{"i": i} for i in range(250)])
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
