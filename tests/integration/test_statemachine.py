"""The state machine against the real database: claims, commits, fencing, lost answers, bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from django_meepo import (
    CommitConflict,
    CommitNotAllowed,
    InvalidJob,
    InvalidStatus,
    Job,
    JobNotFound,
    api,
)
from django_meepo import statemachine as sm
from django_meepo.db import Sql
from django_meepo.models import Attempt
from django_meepo.registry import get_task

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"


def claim_one(job: Job, *, lease: float = 30, worker: str = "w1", cid: int | None = None) -> list[sm.ClaimedJob]:
    return sm.claim(job.task, [sm.Ref(job.id, cid or job.cid)], worker=worker, lease_seconds=lease, using=DB)


def test_claim_takes_todo_to_doing_with_a_lease_and_a_new_cid() -> None:
    job = Job.objects.push("record", b"p")
    [claimed] = claim_one(job)
    assert (claimed.id, claimed.cid, claimed.payload, claimed.attempts) == (job.id, 2, b"p", 1)
    row = Job.objects.get(id=job.id)
    assert (row.status, row.cid, row.worker, row.attempts) == ("doing", 2, "w1", 1)
    assert row.lease_until > timezone.now() + timedelta(seconds=25)


def test_stale_and_duplicated_entries_are_dropped_at_claim() -> None:
    a = Job.objects.push("record", b"a")
    b = Job.objects.push("record", b"b")
    refs = [sm.Ref(a.id, 1), sm.Ref(a.id, 1), sm.Ref(b.id, 7), sm.Ref(999999, 1)]
    won = sm.claim("record", refs, worker="w", lease_seconds=30, using=DB)
    assert [c.id for c in won] == [a.id], "a duplicated entry claims once; a stale cid or unknown id claims nothing"
    assert sm.claim("record", [sm.Ref(a.id, 1)], worker="w2", lease_seconds=30, using=DB) == []


def test_claim_refuses_another_tasks_job_and_a_job_not_yet_due() -> None:
    job = Job.objects.push("record", b"a")
    assert sm.claim("other", [sm.Ref(job.id, 1)], worker="w", lease_seconds=30, using=DB) == []
    later = Job.objects.push("record", b"b", delay=60)
    assert sm.claim("record", [sm.Ref(later.id, 1)], worker="w", lease_seconds=30, using=DB) == []


def test_batch_done_commit_reports_exactly_which_rows_were_fenced_off() -> None:
    jobs = [Job.objects.push("record", b"%d" % i) for i in range(3)]
    claimed = sm.claim("record", [sm.Ref(j.id, 1) for j in jobs], worker="w", lease_seconds=30, using=DB)
    api.repush(jobs[1].id)  # an operator repushes one while it runs
    outcome = sm.finish_done("record", [c.ref for c in claimed], using=DB)
    assert sorted(r.id for r in outcome.won) == [jobs[0].id, jobs[2].id]
    assert [r.id for r in outcome.lost] == [jobs[1].id]
    statuses = dict(Job.objects.values_list("id", "status"))
    assert statuses == {jobs[0].id: "done", jobs[1].id: "todo", jobs[2].id: "done"}


def test_failure_retries_with_backoff_then_fails_on_the_nth() -> None:
    task = get_task("record")  # max_failed_times 3, backoff 0.2 s without jitter
    job = Job.objects.push("record", b"x")
    for attempt in (1, 2, 3):
        [claimed] = sm.claim("record", [sm.Ref(job.id, Job.objects.get(id=job.id).cid)], worker="w",
                             lease_seconds=30, using=DB, now=timezone.now() + timedelta(seconds=10 * attempt))
        result = sm.finish_failed("record", claimed, task.options, error="Traceback: boom", error_class="x.Boom",
                                  worker="w", using=DB)
        row = Job.objects.get(id=job.id)
        assert row.failed_times == attempt
        assert row.status == ("failed" if attempt == 3 else "todo")
        assert result.status == row.status
    attempts = list(Attempt.objects.filter(job_id=job.id).order_by("number"))
    assert [(a.number, a.outcome, a.error_class) for a in attempts] == [
        (1, "failed", "x.Boom"), (2, "failed", "x.Boom"), (3, "failed", "x.Boom")]
    assert "Traceback: boom" in Job.objects.get(id=job.id).last_error


def test_job_commit_with_a_stale_cid_is_a_clear_conflict() -> None:
    task = get_task("manual")
    job = Job.objects.push("manual", json={})
    [claimed] = claim_one(job)
    api.repush(job.id)
    with pytest.raises(CommitConflict, match=r"it is now 'todo' at cid 3, not at cid 2.*nothing was written"):
        sm.job_commit("manual", claimed, "done", task.options, worker="w", using=DB)
    assert Job.objects.get(id=job.id).status == "todo"


def test_commit_in_auto_mode_is_an_error_as_in_meepo() -> None:
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    with pytest.raises(CommitNotAllowed, match="auto-commits"):
        sm.job_commit("record", claimed, "done", get_task("record").options, worker="w", using=DB)
    with pytest.raises(CommitNotAllowed, match="auto-commits"):
        api.commit(job.id, claimed.cid, "done")
    assert Job.objects.get(id=job.id).status == "doing"


def test_meepo_style_commit_by_id_and_cid() -> None:
    job = Job.objects.push("manual", json={})
    [claimed] = claim_one(job)
    with pytest.raises(CommitConflict):
        api.commit(job.id, claimed.cid - 1, "done")
    api.commit(job.id, claimed.cid, "done")
    assert Job.objects.get(id=job.id).status == "done"


def test_operator_rules() -> None:
    job = Job.objects.push("record", b"x")
    api.operator_commit(job.id, "done")
    assert Job.objects.get(id=job.id).status == "done"
    with pytest.raises(CommitNotAllowed, match="only from todo, doing, zombie; repush it"):
        api.operator_commit(job.id, "failed")
    api.operator_commit(job.id, "todo")  # = repush
    row = Job.objects.get(id=job.id)
    assert (row.status, row.cid) == ("todo", 3)
    with pytest.raises(CommitConflict, match="at cid 3, not at cid 1"):
        api.operator_commit(job.id, "failed", cid=1)
    api.operator_commit(job.id, "failed", cid=3, note="bad data")
    row = Job.objects.get(id=job.id)
    assert (row.status, row.last_error) == ("failed", "bad data")


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda j: api.operator_commit(j.id, "finished"), InvalidStatus, "'finished' is not a job status"),
        (lambda j: api.operator_commit(j.id, "doing"), CommitNotAllowed, "may commit done, failed, todo"),
        (lambda j: api.operator_commit(j.id, "done", cid=0), InvalidJob, "cid must be a positive integer"),
        (lambda j: api.operator_commit(j.id, "done", cid="x"), InvalidJob, "cid must be a positive integer"),
        (lambda j: api.repush(-4), InvalidJob, "job id must be a positive integer"),
        (lambda j: api.repush(j.id + 1000), JobNotFound, "no job with id"),
        (lambda j: api.commit(j.id, 1, "maybe"), InvalidStatus, "not a job status"),
    ],
)
def test_bad_operator_input_is_named_and_writes_nothing(call, error, fragment) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    before = list(Job.objects.values_list("id", "status", "cid", "updated_at"))
    with pytest.raises(error, match=fragment):
        call(job)
    assert list(Job.objects.values_list("id", "status", "cid", "updated_at")) == before


def test_repush_fences_off_a_copy_still_running_and_one_still_queued(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # Meepo kept the commit id on repush, so the old run could still commit (weakness 2). Here it cannot.
    job = Job.objects.push("record", b"x")
    [old_run] = claim_one(job)
    api.repush(job.id)
    assert sm.finish_done("record", [old_run.ref], using=DB).lost == [old_run.ref]
    assert Job.objects.get(id=job.id).status == "todo"
    assert sm.claim("record", [sm.Ref(job.id, 1)], worker="w", lease_seconds=30, using=DB) == [], \
        "the entry queued before the repush is stale"
    [new_run] = sm.claim("record", [sm.Ref(job.id, 3)], worker="w", lease_seconds=30, using=DB)
    assert new_run.cid == 4


class LoseAnswer:
    """Fault injection: let the statement commit, then raise as if the connection died before the answer."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, times: int = 1) -> None:
        self.left = times
        original = Sql.execute

        def execute(sql: Sql, statement: str, params: object) -> int:
            result = original(sql, statement, params)
            if self.left and statement.startswith("UPDATE"):
                self.left -= 1
                raise OperationalError(2013, "Lost connection to MySQL server during query")
            return result

        monkeypatch.setattr(Sql, "execute", execute)


def test_a_lost_answer_to_a_commit_is_rechecked_not_reported_as_a_conflict(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    jobs = [Job.objects.push("record", b"x") for _ in range(3)]
    claimed = sm.claim("record", [sm.Ref(j.id, 1) for j in jobs], worker="w", lease_seconds=30, using=DB)
    LoseAnswer(monkeypatch)
    outcome = sm.finish_done("record", [c.ref for c in claimed], using=DB)
    assert outcome.lost == [] and len(outcome.won) == 3
    assert set(Job.objects.values_list("status", flat=True)) == {"done"}


def test_a_lost_answer_to_a_claim_still_returns_the_jobs_won(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    LoseAnswer(monkeypatch)
    [claimed] = claim_one(job)
    assert claimed.cid == 2 and Job.objects.get(id=job.id).status == "doing"


def test_a_lost_answer_to_a_repush_is_not_a_conflict(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    LoseAnswer(monkeypatch)
    result = api.repush(job.id)
    assert result.cid == 2 and Job.objects.get(id=job.id).cid == 2


def test_a_lost_answer_to_a_failure_records_it_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    LoseAnswer(monkeypatch)
    sm.finish_failed("record", claimed, get_task("record").options, error="e", error_class="E", worker="w", using=DB)
    assert Job.objects.get(id=job.id).failed_times == 1
    assert Attempt.objects.filter(job_id=job.id).count() == 1


def test_lease_renewal_reports_leases_that_were_taken_over() -> None:
    a, b = Job.objects.push("record", b"a"), Job.objects.push("record", b"b")
    claimed = sm.claim("record", [sm.Ref(a.id, 1), sm.Ref(b.id, 1)], worker="w", lease_seconds=5, using=DB)
    api.repush(b.id)
    lost = sm.extend_leases([c.ref for c in claimed], lease_seconds=60, using=DB)
    assert lost == {b.id}
    assert Job.objects.get(id=a.id).lease_until > timezone.now() + timedelta(seconds=50)


def test_release_hands_back_without_counting_a_failure() -> None:
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    [t] = sm.release("record", [claimed], worker="w", using=DB, reason="shutdown")
    row = Job.objects.get(id=job.id)
    assert (row.status, row.failed_times, row.cid, t.cid) == ("todo", 0, 3, 3)
    assert Attempt.objects.get(job_id=job.id).outcome == "released"
