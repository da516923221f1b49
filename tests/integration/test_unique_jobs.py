"""Unique jobs: push(unique_key=...) returns the job holding the key while it counts, race-free."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, transaction

from django_meepo import Job, outbox
from django_meepo.dispatch.redis import queued_entries
from django_meepo.states import Status
from tests.support.workers import subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def queued(redis, prefix: str, task: str = "record") -> list[bytes]:  # type: ignore[no-untyped-def]
    outbox.flush()
    return queued_entries(redis, prefix, task)


def set_status(job: Job, status: str) -> None:
    # Test set-up: put the holder in a status as a worker would have (the state machine is not under test here).
    Job.objects.filter(id=job.id).update(status=status)


def test_a_second_push_of_the_key_returns_the_holder(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    first = Job.objects.push("record", json={"n": 1}, unique_key="user:42")
    second = Job.objects.push("record", json={"n": 2}, unique_key="user:42")
    assert second.id == first.id
    assert bytes(second.payload) == b'{"n":1}', "the holder is returned as stored, not the second payload"
    assert Job.objects.filter(unique_key="user:42").count() == 1
    assert queued(redis, key_prefix) == [f"{first.id}:1".encode()], "the refused push dispatches nothing"
    other_task = Job.objects.push("other", json={}, unique_key="user:42")
    assert other_task.id != first.id, "keys are unique per task"


@pytest.mark.parametrize(("scope", "status", "counts"), [
    ("pending", Status.TODO, True), ("pending", Status.DOING, False), ("pending", Status.DONE, False),
    ("running", Status.TODO, True), ("running", Status.DOING, True), ("running", Status.DONE, False),
    ("running", Status.FAILED, False), ("finished", Status.DONE, True), ("finished", Status.FAILED, True),
])
def test_the_pushers_scope_decides_whether_the_holder_counts(scope: str, status: str, counts: bool) -> None:
    holder = Job.objects.push("record", b"a", unique_key="k", unique_while=scope)
    set_status(holder, status)
    again = Job.objects.push("record", b"b", unique_key="k", unique_while=scope)
    assert (again.id == holder.id) is counts
    if not counts:
        old = Job.objects.get(id=holder.id)
        assert (old.unique_key, old.unique_hold) == ("k", None), "the old job let go of the key, kept for display"
        assert Job.objects.get(id=again.id).unique_hold == "k"
        assert Job.objects.push("record", b"c", unique_key="k", unique_while=scope).id == again.id


def test_unique_for_counts_a_holder_only_that_long(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    holder = Job.objects.push("record", b"a", unique_key="k", unique_while="finished", unique_for=600)
    set_status(holder, Status.DONE)
    assert Job.objects.push("record", b"b", unique_key="k", unique_while="finished",
                            unique_for=timedelta(minutes=10)).id == holder.id
    Job.objects.filter(id=holder.id).update(created_at=holder.created_at - timedelta(minutes=11))
    fresh = Job.objects.push("record", b"c", unique_key="k", unique_while="finished", unique_for=600)
    assert fresh.id != holder.id
    assert queued(redis, key_prefix) == [f"{holder.id}:1".encode(), f"{fresh.id}:1".encode()]


def test_inside_the_callers_transaction(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = Job.objects.push("record", b"a", unique_key="k")
        assert Job.objects.push("record", b"b", unique_key="k").id == rolled_back.id
        raise RuntimeError("roll back")
    assert not Job.objects.exists()
    with transaction.atomic():
        job = Job.objects.push("record", b"c", unique_key="k")
        plain = Job.objects.push("record", b"d")  # the transaction is still usable after a refused INSERT
        assert Job.objects.push("record", b"e", unique_key="k").id == job.id
    assert Job.objects.count() == 2
    assert sorted(queued(redis, key_prefix)) == sorted([f"{job.id}:1".encode(), f"{plain.id}:1".encode()])


def test_push_many_with_unique_keys(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    holder = Job.objects.push("record", b"old", unique_key="b")
    jobs = Job.objects.push_many("record", [b"1", b"2", b"3", b"4", b"5"], unique_keys=["a", "b", None, "a", None])
    assert jobs[1].id == holder.id
    assert jobs[3].id == jobs[0].id, "a key given twice in one batch gives its first job twice"
    assert [bytes(j.payload) for j in jobs] == [b"1", b"old", b"3", b"1", b"5"]
    created = {jobs[0].id, jobs[2].id, jobs[4].id}
    assert Job.objects.count() == 4
    assert sorted(queued(redis, key_prefix)) == sorted(
        f"{i}:1".encode() for i in {holder.id} | created)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"unique_key": ""}, "unique_key must be a non-empty string"),
    ({"unique_key": "x" * 201}, "at most 200"),
    ({"unique_key": 42}, "unique_key must be"),
    ({"unique_key": "k", "unique_while": "forever"}, "unique_while must be one of"),
    ({"unique_key": "k", "unique_for": -1}, "unique_for must be a positive"),
    ({"unique_key": "k", "unique_for": 0}, "unique_for must be a positive"),
    ({"unique_key": "k", "unique_for": "10m"}, "unique_for must be a number of seconds"),
    ({"unique_for": 10}, "need a unique_key"),
    ({"unique_key": "k", "idempotency_key": "i"}, "not both"),
])
def test_bad_input_is_refused_and_nothing_is_written(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Job.objects.push("record", b"x", **kwargs)
    assert not Job.objects.exists()


def test_push_many_bad_unique_keys_write_nothing() -> None:
    with pytest.raises(ValueError, match=r"unique_keys\[1\]: unique_key must be"):
        Job.objects.push_many("record", [b"1", b"2"], unique_keys=["a", ""])
    with pytest.raises(ValueError, match="has 1 key"):
        Job.objects.push_many("record", [b"1", b"2"], unique_keys=["a"])
    with pytest.raises(ValueError, match="unique_for must be a positive"):
        Job.objects.push_many("record", [b"1"], unique_keys=[None], unique_for=-5)
    assert not Job.objects.exists()


RACER = textwrap.dedent("""
    import sys, time, django
    django.setup()
    from django.db import transaction
    from django_meepo import Job
    start = float(sys.argv[1])
    time.sleep(max(0.0, start - time.time()))
    with transaction.atomic():
        job = Job.objects.push("record", sys.argv[2].encode(), unique_key="race")
        time.sleep(0.3)  # hold the transaction open while the others push
    print(job.id)
""")


def test_unique_pushes_racing_from_four_processes() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers: there is no race to test")
    start = time.time() + 4  # every process is set up by then, so they push within milliseconds of each other
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(start), f"p{i}"], cwd=ROOT, env=subprocess_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    ids = {int(out.strip()) for out, _ in outputs}
    assert len(ids) == 1, f"four racing pushes made {len(ids)} jobs: {ids}"
    assert Job.objects.filter(task="record").count() == 1
