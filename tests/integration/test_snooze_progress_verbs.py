"""The snooze verb and the progress write against the real database: fencing, lost answers, bad input, dispatch."""

from __future__ import annotations

from datetime import timedelta

import pytest

from django_meepo import CommitConflict, Job, api
from django_meepo import statemachine as sm
from django_meepo.clock import db_now
from django_meepo.dispatch.redis import dispatched_key
from django_meepo.models import Attempt
from django_meepo.progress import Progress
from tests.integration.test_statemachine import DB, LoseAnswer, LoseCommitAnswer, claim_one

pytestmark = pytest.mark.django_db(transaction=True)


def state(job_id: int) -> tuple[str, int, int, int]:
    row = Job.objects.get(id=job_id)
    return row.status, row.cid, row.failed_times, row.attempts


def test_snooze_takes_doing_to_todo_due_later_without_a_failure_and_records_the_run(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    Job.objects.filter(id=job.id).update(failed_times=2, last_error="earlier failure")
    [claimed] = claim_one(job)
    redis.delete(dispatched_key(key_prefix, "record"))  # the push's entry (cid 1)
    before = db_now(DB)
    result = sm.snooze("record", claimed, 60, worker="w1", using=DB)
    assert (result.status, result.cid) == ("todo", 3)
    row = Job.objects.get(id=job.id)
    assert (row.status, row.cid, row.failed_times, row.attempts, row.lease_until, row.last_error) == \
        ("todo", 3, 2, 1, None, "earlier failure")
    assert before + timedelta(seconds=59) <= row.due_at <= db_now(DB) + timedelta(seconds=60)
    [attempt] = Attempt.objects.filter(job_id=job.id)
    assert (attempt.number, attempt.outcome, attempt.worker) == (1, "snoozed", "w1")
    assert redis.hget(dispatched_key(key_prefix, "record"), str(job.id)) is None, \
        "a job due later is the sweeper's to dispatch once due, not the outbox's now"
    assert sm.claim("record", [sm.Ref(job.id, 3)], worker="w", lease_seconds=30, using=DB) == [], "not due yet"


def test_snooze_zero_is_due_at_once_and_dispatched(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    redis.delete(dispatched_key(key_prefix, "record"))
    sm.snooze("record", claimed, 0, worker="w1", using=DB)
    assert redis.hget(dispatched_key(key_prefix, "record"), str(job.id)) == b"3"
    [again] = sm.claim("record", [sm.Ref(job.id, 3)], worker="w2", lease_seconds=30, using=DB)
    assert (again.cid, again.attempts, again.failed_times) == (4, 2, 0)


@pytest.mark.parametrize("seconds", [-1, -0.001, float("nan"), float("inf"), "5", None, True, 10**20])
def test_bad_snooze_seconds_are_a_value_error_naming_them_and_write_nothing(seconds) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    with pytest.raises(ValueError) as raised:
        sm.snooze("record", claimed, seconds, worker="w1", using=DB)
    assert repr(seconds) in str(raised.value)
    assert state(job.id) == ("doing", 2, 0, 1)
    assert not Attempt.objects.filter(job_id=job.id).exists()


def test_a_stale_snooze_is_a_conflict_naming_the_state_and_writes_nothing() -> None:
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    api.repush(job.id)  # cid 3, todo
    with pytest.raises(CommitConflict) as raised:
        sm.snooze("record", claimed, 5, worker="w1", using=DB)
    assert "it is now 'todo' at cid 3, not at cid 2" in str(raised.value) and "nothing was written" in str(raised.value)
    assert (raised.value.actual_status, raised.value.actual_cid) == ("todo", 3)
    assert state(job.id)[:3] == ("todo", 3, 0)
    assert not Attempt.objects.filter(job_id=job.id, outcome="snoozed").exists()


def test_a_second_snooze_of_the_same_run_is_a_conflict() -> None:
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    sm.snooze("record", claimed, 5, worker="w1", using=DB)
    with pytest.raises(CommitConflict, match="'todo' at cid 3"):
        sm.snooze("record", claimed, 5, worker="w1", using=DB)
    assert Attempt.objects.filter(job_id=job.id).count() == 1


@pytest.mark.parametrize("fault", [LoseAnswer, LoseCommitAnswer])
def test_a_snooze_whose_answer_was_lost_is_settled_once_not_a_conflict(monkeypatch, fault) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    fault(monkeypatch)
    result = sm.snooze("record", claimed, 5, worker="w1", using=DB)
    assert (result.status, result.cid) == ("todo", 3)
    assert state(job.id) == ("todo", 3, 0, 1)
    assert list(Attempt.objects.filter(job_id=job.id).values_list("outcome", flat=True)) == ["snoozed"]


def test_progress_is_written_at_the_claims_cid_only() -> None:
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    assert sm.write_progress(claimed.ref, Progress(3, 10, "three"), using=DB) is True
    row = Job.objects.get(id=job.id)
    assert (row.progress_done, row.progress_total, row.progress_note, row.cid, row.status) == \
        (3, 10, "three", 2, "doing")
    assert row.progress_at is not None
    assert sm.write_progress(claimed.ref, Progress(3, 10, "three"), using=DB) is True, "the same value again"
    api.repush(job.id)
    assert sm.write_progress(claimed.ref, Progress(9, 10, "stale"), using=DB) is False
    row = Job.objects.get(id=job.id)
    assert (row.progress_done, row.progress_note) == (3, "three"), "a stale run writes nothing"


def test_a_progress_write_whose_answer_was_lost_is_settled_by_its_effect(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    LoseAnswer(monkeypatch)
    assert sm.write_progress(claimed.ref, Progress(5, 6, ""), using=DB) is True
    assert Job.objects.filter(id=job.id, progress_done=5, progress_total=6).exists()
