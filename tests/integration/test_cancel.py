"""The cancel verb against the real database: todo, doing and zombie → cancelled; fencing of the run still going;
refusals of finished jobs; lost answers; bad input; what a running job's heartbeat tells it."""

from __future__ import annotations

import threading
from unittest import mock

import pytest

from django_meepo import CommitConflict, CommitNotAllowed, InvalidJob, Job, JobNotFound, api
from django_meepo import statemachine as sm
from django_meepo.context import JobContext
from django_meepo.dispatch.redis import dispatched_key
from django_meepo.models import Attempt
from django_meepo.monitor import lease_lost
from django_meepo.progress import Progress
from django_meepo.registry import get_task
from tests.integration.test_lost_answers import answer_lost_while_waiting_on_a_row_lock
from tests.integration.test_statemachine import DB, LoseAnswer, LoseCommitAnswer, claim_one

pytestmark = pytest.mark.django_db(transaction=True)


def state(job_id: int) -> tuple[str, int, str]:
    row = Job.objects.get(id=job_id)
    return row.status, row.cid, row.last_error


def outcomes(job_id: int) -> list[tuple[int, str, str]]:
    return list(Attempt.objects.filter(job_id=job_id).order_by("number", "id")
                .values_list("number", "outcome", "error"))


def test_cancel_of_a_todo_job_ends_it_and_its_queued_entry_can_no_longer_be_claimed(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    result = api.cancel(job.id)
    assert (result.status, result.cid) == ("cancelled", 2)
    row = Job.objects.get(id=job.id)
    assert (row.status, row.cid, row.last_error, row.lease_until) == ("cancelled", 2, "cancelled by an operator", None)
    assert row.finished_at is not None
    assert sm.claim("record", [sm.Ref(job.id, 1)], worker="w", lease_seconds=30, using=DB) == [], \
        "the entry pushed at cid 1 is stale"
    assert sm.claim("record", [sm.Ref(job.id, 2)], worker="w", lease_seconds=30, using=DB) == [], \
        "a cancelled job is not claimable at its new cid either"
    assert outcomes(job.id) == [], "no run was cut short"
    assert redis.hget(dispatched_key(key_prefix, "record"), str(job.id)) != b"2", "nothing dispatched"


def test_cancel_of_a_running_job_fences_its_commit_renewal_snooze_and_progress() -> None:
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job, worker="w-run")
    api.cancel(job.id, note="not wanted any more")
    assert state(job.id) == ("cancelled", 3, "not wanted any more")
    assert outcomes(job.id) == [(1, "cancelled", "not wanted any more")]
    attempt = Attempt.objects.get(job_id=job.id)
    assert attempt.worker == "w-run" and attempt.finished_at is not None
    assert sm.finish_done("record", [claimed.ref], using=DB).lost == [claimed.ref]
    with pytest.raises(CommitConflict, match="it is now 'cancelled' at cid 3, not at cid 2"):
        sm.finish_failed("record", claimed, get_task("record").options, error="e", error_class="E", worker="w-run",
                         using=DB)
    with pytest.raises(CommitConflict, match="'cancelled'"):
        sm.snooze("record", claimed, 5, worker="w-run", using=DB)
    assert sm.extend_leases([claimed.ref], lease_seconds=30, using=DB) == {job.id}
    assert sm.write_progress(claimed.ref, Progress(1, 2, ""), using=DB) is False
    assert state(job.id) == ("cancelled", 3, "not wanted any more"), "the row stays cancelled"
    assert len(outcomes(job.id)) == 1


def test_cancel_of_a_manual_job_refuses_its_own_commit() -> None:
    job = Job.objects.push("manual", json={"commit": "done"})
    [claimed] = claim_one(job)
    api.cancel(job.id)
    with pytest.raises(CommitConflict, match="'cancelled'"):
        api.commit(job.id, claimed.cid, "done")
    assert state(job.id)[:2] == ("cancelled", 3)


def test_a_long_note_is_cut_to_max_error_bytes_and_cleaned(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MEEPO = {**settings.MEEPO, "MAX_ERROR_BYTES": 200}
    job = Job.objects.push("record", b"x")
    api.cancel(job.id, note="why\x00" + "x" * 1000)
    stored = Job.objects.get(id=job.id).last_error
    assert stored.startswith("whyxxx") and "\x00" not in stored
    assert len(stored.encode()) <= 200 and "bytes cut by django-meepo" in stored


def test_cancel_of_a_parked_zombie() -> None:
    job = Job.objects.push("record", b"x")
    Job.objects.filter(id=job.id).update(status="zombie", cid=5)
    assert api.cancel(job.id).cid == 6
    assert state(job.id)[:2] == ("cancelled", 6)


@pytest.mark.parametrize("status", ["done", "failed", "cancelled"])
def test_cancel_of_a_finished_job_is_a_clear_refusal_and_writes_nothing(status) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    Job.objects.filter(id=job.id).update(status=status, cid=4, last_error="before")
    before = list(Job.objects.filter(id=job.id).values_list("status", "cid", "updated_at", "last_error"))
    with pytest.raises(CommitNotAllowed) as raised:
        api.cancel(job.id)
    assert f"job {job.id} is {status!r}: only a job in todo, doing, zombie can be cancelled" in str(raised.value)
    assert "nothing was written" in str(raised.value)
    assert list(Job.objects.filter(id=job.id).values_list("status", "cid", "updated_at", "last_error")) == before


def test_cancel_at_a_cid_the_job_moved_past_is_a_conflict_naming_its_state() -> None:
    job = Job.objects.push("record", b"x")
    claim_one(job)
    with pytest.raises(CommitConflict, match=r"cannot cancel job .*: it is now 'doing' at cid 2, not at cid 1"):
        api.cancel(job.id, cid=1)
    assert state(job.id)[:2] == ("doing", 2)
    assert outcomes(job.id) == []


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda j: api.cancel(j.id + 1000), JobNotFound, "no job with id"),
        (lambda j: api.cancel(0), InvalidJob, "job id must be a positive integer, not 0"),
        (lambda j: api.cancel("abc"), InvalidJob, "job id must be a positive integer, not 'abc'"),
        (lambda j: api.cancel(j.id, cid=0), InvalidJob, "cid must be a positive integer, not 0"),
        (lambda j: api.cancel(True), InvalidJob, "not True"),
        (lambda j: api.cancel_many([j.id, j.id + 1000]), JobNotFound, r"no job with id \d+; nothing was cancelled"),
        (lambda j: api.cancel_many([j.id, -1]), InvalidJob, "not -1"),
        (lambda j: api.cancel(j.id, note=None), ValueError, "a cancel's note must be a string, not None"),
        (lambda j: api.cancel_many([j.id], note=b"x"), ValueError, "a cancel's note must be a string, not b'x'"),
    ],
    ids=["unknown", "zero", "text", "bad-cid", "bool", "many-unknown", "many-negative", "note", "many-note"],
)
def test_bad_cancel_input_is_named_and_writes_nothing(call, error, fragment) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    before = list(Job.objects.values_list("id", "status", "cid", "updated_at"))
    with pytest.raises(error, match=fragment):
        call(job)
    assert list(Job.objects.values_list("id", "status", "cid", "updated_at")) == before


def test_cancel_many_cancels_what_it_may_and_names_what_it_left_alone() -> None:
    todo, doing, done = (Job.objects.push("record", b"x") for _ in range(3))
    claim_one(doing, worker="w-many")
    Job.objects.filter(id=done.id).update(status="done", cid=3)
    result = api.cancel_many([todo.id, doing.id, done.id, str(todo.id)], note="bulk")
    assert sorted((t.id, t.status, t.cid) for t in result.cancelled) == [(todo.id, "cancelled", 2),
                                                                         (doing.id, "cancelled", 3)]
    assert result.refused == [f"job {done.id} is 'done': only a job in todo, doing, zombie can be cancelled (a "
                              f"finished job is left as it is; repush it to run it again); nothing was written"]
    assert state(done.id)[:2] == ("done", 3)
    assert outcomes(doing.id) == [(1, "cancelled", "bulk")] and outcomes(todo.id) == []


def test_cancel_many_leaves_alone_a_job_that_changed_between_its_read_and_its_update() -> None:
    a, b = Job.objects.push("record", b"a"), Job.objects.push("record", b"b")
    from django_meepo import checked

    read_rows = checked.read_rows

    def read_then_race(using, ids, **filters):  # type: ignore[no-untyped-def]
        rows = read_rows(using, ids, **filters)
        claim_one(b)  # b moves on after it was read
        return rows

    with mock.patch("django_meepo.operators.read_rows", read_then_race):
        result = api.cancel_many([a.id, b.id])
    assert [t.id for t in result.cancelled] == [a.id]
    assert result.refused == [f"job {b.id} changed meanwhile (it was 'todo' at cid 1); nothing was written"]
    assert state(b.id)[:2] == ("doing", 2) and outcomes(b.id) == []


def test_the_on_finished_hook_hears_of_a_cancelled_job_once_its_commit_is_durable() -> None:
    job = Job.objects.push("record", b"x")
    with mock.patch("django_meepo.effects.transitions_ended") as ended:
        api.cancel(job.id)
    [[transitions, using]] = [c.args for c in ended.call_args_list]
    assert [(t.id, t.status) for t in transitions] == [(job.id, "cancelled")] and using == DB


# ------------------------------------------------------------------------------------------- lost answers

def test_a_lost_answer_to_a_cancel_is_settled_by_its_effect(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    claim_one(job)
    LoseAnswer(monkeypatch)  # raised inside the transaction: the UPDATE and its Attempt roll back, then run again
    result = api.cancel(job.id)
    assert result.cid == 3 and state(job.id)[:2] == ("cancelled", 3)
    assert [o for _, o, _ in outcomes(job.id)] == ["cancelled"]


def test_a_cancel_committed_before_its_answer_was_lost_is_recorded_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    claim_one(job)
    fault = LoseCommitAnswer(monkeypatch)
    result = api.cancel(job.id)
    assert fault.lost == 1 and result.cid == 3
    assert state(job.id)[:2] == ("cancelled", 3)
    assert [o for _, o, _ in outcomes(job.id)] == ["cancelled"], "the Attempt row written once, with the cancel"


def test_a_cancel_whose_first_copy_committed_after_its_answer_was_lost_does_not_raise() -> None:
    job = Job.objects.push("record", json={})
    with answer_lost_while_waiting_on_a_row_lock(job.id):
        try:
            api.cancel(job.id)
        except CommitConflict as exc:
            pytest.fail(f"cancel raised although its first copy was written: {exc}")
    assert state(job.id)[:2] == ("cancelled", 2), "cancelled exactly once"


# ------------------------------------------------------------------------------------------- the run's side

def context_of(claimed: sm.ClaimedJob) -> JobContext:
    return JobContext(job=claimed, _commit=lambda ctx, status: None, _heartbeat=lambda ctx: None)  # type: ignore[arg-type,return-value]


def test_a_lost_lease_found_cancelled_marks_the_run_cancelled_and_stopping() -> None:
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    ctx = context_of(claimed)
    seen: list[tuple[bool, bool]] = []
    waiter = threading.Thread(target=lambda: seen.append((ctx.stop_event.wait(10), ctx.cancelled)))
    waiter.start()
    api.cancel(job.id)
    lease_lost(ctx, DB)
    waiter.join(10)
    assert (ctx.cancelled, ctx.stopping, ctx.lease_lost) == (True, True, True)
    assert seen == [(True, True)], "cancelled is set before stopping: one who sees stopping sees cancelled"


def test_a_lost_lease_of_a_repushed_job_is_not_called_cancelled() -> None:
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    ctx = context_of(claimed)
    api.repush(job.id)
    lease_lost(ctx, DB)
    assert (ctx.cancelled, ctx.stopping) == (False, True)


def test_a_job_cancelled_in_an_earlier_run_and_repushed_is_not_called_cancelled() -> None:
    """The row is read past this run's cid: a cancel before this run's claim says nothing about it."""
    job = Job.objects.push("record", b"x")
    api.cancel(job.id)
    api.repush(job.id)
    [claimed] = claim_one(job, cid=3)
    ctx = context_of(claimed)
    Job.objects.filter(id=job.id).update(status="cancelled", cid=claimed.cid)  # as if, at this run's own cid
    lease_lost(ctx, DB)
    assert ctx.cancelled is False


def test_a_cancelled_job_can_be_repushed_and_then_runs(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    api.cancel(job.id)
    result = api.repush(job.id)
    assert (result.status, result.cid) == ("todo", 3)
    assert redis.hget(dispatched_key(key_prefix, "record"), str(job.id)) == b"3", "dispatched again"
    [claimed] = sm.claim("record", [sm.Ref(job.id, 3)], worker="w", lease_seconds=30, using=DB)
    assert claimed.cid == 4


def test_a_cancelled_job_is_finished_for_the_purge() -> None:
    from datetime import timedelta

    from django_meepo.purge import finished_before, purge
    from django_meepo.states import FINISHED_STATUSES

    assert "cancelled" in FINISHED_STATUSES
    job, kept = Job.objects.push("record", b"x"), Job.objects.push("record", b"y")
    api.cancel(job.id)
    cutoff = Job.objects.get(id=job.id).finished_at + timedelta(seconds=1)
    assert purge(finished_before(cutoff)).deleted == 1
    assert list(Job.objects.values_list("id", flat=True)) == [kept.id]
