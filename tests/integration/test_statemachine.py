"""The state machine against the real database: claims, commits, fencing, lost answers, bad input. The tests taking
``t`` run for tasks on the shared job table and on a table of their own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError, connections
from django.utils import timezone

from django_meepo import (
    CommitConflict,
    CommitNotAllowed,
    InvalidJob,
    InvalidStatus,
    Job,
    JobNotFound,
    api,
    outbox,
)
from django_meepo import statemachine as sm
from django_meepo.clock import db_now
from django_meepo.db import Sql
from django_meepo.dispatch.redis import queued_entries
from django_meepo.models import Attempt
from django_meepo.registry import get_task
from django_meepo.states import REPUSH_RUNNING_DELAY
from tests.support.tables import JobsTable

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"


@pytest.fixture
def t(jobs_table: JobsTable) -> JobsTable:
    """The tests that take ``t`` run on the shared job table and on a table of its own (tests/support/tables.py)."""
    return jobs_table


def claim_one(job: Job, *, lease: float = 30, worker: str = "w1", cid: int | None = None,
              later: float = 0) -> list[sm.ClaimedJob]:
    """Claim ``job`` (at ``cid``), ``later`` seconds from now on the database's clock."""
    now = db_now(DB) + timedelta(seconds=later)
    return sm.claim(job.task, [sm.Ref(job.id, cid or job.cid)], worker=worker, lease_seconds=lease, using=DB,
                    now=now)


def test_claim_takes_todo_to_doing_with_a_lease_and_a_new_cid(t: JobsTable) -> None:
    job = t.model.objects.push(t.record, b"p")
    [claimed] = claim_one(job)
    assert (claimed.id, claimed.cid, claimed.payload, claimed.attempts) == (job.id, 2, b"p", 1)
    row = t.model.objects.get(id=job.id)
    assert (row.status, row.cid, row.worker, row.attempts) == ("doing", 2, "w1", 1)
    assert row.lease_until > timezone.now() + timedelta(seconds=25)


def test_stale_and_duplicated_entries_are_dropped_at_claim(t: JobsTable) -> None:
    a = t.model.objects.push(t.record, b"a")
    b = t.model.objects.push(t.record, b"b")
    refs = [sm.Ref(a.id, 1), sm.Ref(a.id, 1), sm.Ref(b.id, 7), sm.Ref(999999, 1)]
    won = sm.claim(t.record, refs, worker="w", lease_seconds=30, using=DB)
    assert [c.id for c in won] == [a.id], "a duplicated entry claims once; a stale cid or unknown id claims nothing"
    assert sm.claim(t.record, [sm.Ref(a.id, 1)], worker="w2", lease_seconds=30, using=DB) == []


def test_claim_refuses_another_tasks_job_and_a_job_not_yet_due(t: JobsTable) -> None:
    job = t.model.objects.push(t.record, b"a")
    assert sm.claim(t.other, [sm.Ref(job.id, 1)], worker="w", lease_seconds=30, using=DB) == []
    later = t.model.objects.push(t.record, b"b", delay=60)
    assert sm.claim(t.record, [sm.Ref(later.id, 1)], worker="w", lease_seconds=30, using=DB) == []


def test_batch_done_commit_reports_exactly_which_rows_were_fenced_off(t: JobsTable) -> None:
    jobs = [t.model.objects.push(t.record, b"%d" % i) for i in range(3)]
    claimed = sm.claim(t.record, [sm.Ref(j.id, 1) for j in jobs], worker="w", lease_seconds=30, using=DB)
    api.repush(jobs[1].id, task=t.record)  # an operator repushes one while it runs
    outcome = sm.finish_done(t.record, [c.ref for c in claimed], using=DB)
    assert sorted(r.id for r in outcome.won) == [jobs[0].id, jobs[2].id]
    assert [r.id for r in outcome.lost] == [jobs[1].id]
    statuses = dict(t.model.objects.values_list("id", "status"))
    assert statuses == {jobs[0].id: "done", jobs[1].id: "todo", jobs[2].id: "done"}


def test_failure_retries_with_backoff_then_fails_on_the_nth(t: JobsTable) -> None:
    task = get_task(t.record)  # max_failed_times 3, backoff 0.2 s without jitter
    job = t.model.objects.push(t.record, b"x")
    for attempt in (1, 2, 3):
        [claimed] = sm.claim(t.record, [sm.Ref(job.id, t.model.objects.get(id=job.id).cid)], worker="w",
                             lease_seconds=30, using=DB, now=timezone.now() + timedelta(seconds=10 * attempt))
        result = sm.finish_failed(t.record, claimed, task.options, error="Traceback: boom", error_class="x.Boom",
                                  worker="w", using=DB)
        row = t.model.objects.get(id=job.id)
        assert row.failed_times == attempt
        assert row.status == ("failed" if attempt == 3 else "todo")
        assert result.status == row.status
    attempts = list(t.attempt.objects.filter(job_id=job.id).order_by("number"))
    assert [(a.number, a.outcome, a.error_class) for a in attempts] == [
        (1, "failed", "x.Boom"), (2, "failed", "x.Boom"), (3, "failed", "x.Boom")]
    assert "Traceback: boom" in t.model.objects.get(id=job.id).last_error


def test_job_commit_with_a_stale_cid_is_a_clear_conflict() -> None:
    task = get_task("manual")
    job = Job.objects.push("manual", json={})
    [claimed] = claim_one(job)
    api.repush(job.id)
    with pytest.raises(CommitConflict, match=r"it is now 'todo' at cid 3, not at cid 2.*nothing was written"):
        sm.job_commit("manual", claimed, "done", task.options, worker="w", using=DB)
    assert Job.objects.get(id=job.id).status == "todo"


def test_commit_in_auto_mode_is_an_error_as_in_meepo(t: JobsTable) -> None:
    job = t.model.objects.push(t.record, b"x")
    [claimed] = claim_one(job)
    with pytest.raises(CommitNotAllowed, match="auto-commits"):
        sm.job_commit(t.record, claimed, "done", get_task(t.record).options, worker="w", using=DB)
    with pytest.raises(CommitNotAllowed, match="auto-commits"):
        api.commit(job.id, claimed.cid, "done", task=t.record)
    assert t.model.objects.get(id=job.id).status == "doing"


def test_meepo_style_commit_by_id_and_cid() -> None:
    job = Job.objects.push("manual", json={})
    [claimed] = claim_one(job)
    with pytest.raises(CommitConflict):
        api.commit(job.id, claimed.cid - 1, "done")
    api.commit(job.id, claimed.cid, "done")
    assert Job.objects.get(id=job.id).status == "done"


def test_operator_rules(t: JobsTable) -> None:
    job = t.model.objects.push(t.record, b"x")
    api.operator_commit(job.id, "done", task=t.record)
    assert t.model.objects.get(id=job.id).status == "done"
    with pytest.raises(CommitNotAllowed, match="only from todo, doing, zombie; repush it"):
        api.operator_commit(job.id, "failed", task=t.record)
    api.operator_commit(job.id, "todo", task=t.record)  # = repush
    row = t.model.objects.get(id=job.id)
    assert (row.status, row.cid) == ("todo", 3)
    with pytest.raises(CommitConflict, match="at cid 3, not at cid 1"):
        api.operator_commit(job.id, "failed", cid=1, task=t.record)
    api.operator_commit(job.id, "failed", cid=3, note="bad data", task=t.record)
    row = t.model.objects.get(id=job.id)
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
def test_bad_operator_input_is_named_and_writes_nothing(t: JobsTable, call, error, fragment) -> None:  # type: ignore[no-untyped-def]
    job = t.model.objects.push(t.record, b"x")
    before = list(t.model.objects.values_list("id", "status", "cid", "updated_at"))
    with pytest.raises(error, match=fragment):
        call(job)
    assert list(t.model.objects.values_list("id", "status", "cid", "updated_at")) == before


def test_repush_fences_off_a_copy_still_running_and_one_still_queued(t: JobsTable, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # Meepo kept the commit id on repush, so the old run could still commit (weakness 2). Here it cannot.
    job = t.model.objects.push(t.record, b"x")
    [old_run] = claim_one(job)
    api.repush(job.id, task=t.record)
    assert sm.finish_done(t.record, [old_run.ref], using=DB).lost == [old_run.ref]
    assert t.model.objects.get(id=job.id).status == "todo"
    assert sm.claim(t.record, [sm.Ref(job.id, 1)], worker="w", lease_seconds=30, using=DB) == [], \
        "the entry queued before the repush is stale"
    assert claim_one(job, cid=3) == [], f"a running job's repush is due {REPUSH_RUNNING_DELAY:g} s later"
    [new_run] = claim_one(job, cid=3, later=REPUSH_RUNNING_DELAY)
    assert new_run.cid == 4


def test_a_running_jobs_repush_is_due_later_and_dispatched_by_the_sweeper_other_repushes_at_once(
        redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # A copy claimed less than waiting.PROOF_AGE ago may still start without a second proof (its outcome is
    # refused); the new copy is due later so that the old one starts, if at all, first (bench.chaos, seed
    # 20261203: job 7629's runs started out of cid order when the new copy was due at once).
    running, finished = Job.objects.push("record", b"r"), Job.objects.push("record", b"f")
    claim_one(running)
    [f_run] = claim_one(finished)
    sm.finish_done("record", [f_run.ref], using=DB)
    now = db_now(DB)
    api.repush_many([running.id, finished.id])
    rows = {j.id: j for j in Job.objects.filter(id__in=[running.id, finished.id])}
    assert rows[running.id].due_at >= now + timedelta(seconds=REPUSH_RUNNING_DELAY)
    assert rows[finished.id].due_at < now + timedelta(seconds=REPUSH_RUNNING_DELAY)
    outbox.flush()
    entries = queued_entries(redis, key_prefix, finished.task)
    assert f"{finished.id}:4".encode() in entries, "a finished job's repush is dispatched at once"
    assert f"{running.id}:3".encode() not in entries, "a running job's repush waits for the sweeper (not due yet)"
    assert api.repush(running.id, cid=3).due_at is not None  # todo now: a second repush is due at once
    assert Job.objects.get(id=running.id).due_at < db_now(DB) + timedelta(seconds=REPUSH_RUNNING_DELAY)


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


def test_lease_renewal_reports_leases_that_were_taken_over(t: JobsTable) -> None:
    a, b = t.model.objects.push(t.record, b"a"), t.model.objects.push(t.record, b"b")
    claimed = sm.claim(t.record, [sm.Ref(a.id, 1), sm.Ref(b.id, 1)], worker="w", lease_seconds=5, using=DB)
    api.repush(b.id, task=t.record)
    lost = sm.extend_leases([c.ref for c in claimed], lease_seconds=60, using=DB, task=t.record)
    assert lost == {b.id}
    assert t.model.objects.get(id=a.id).lease_until > timezone.now() + timedelta(seconds=50)


def test_release_hands_back_without_counting_a_failure() -> None:
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    [t] = sm.release("record", [claimed], worker="w", using=DB, reason="shutdown")
    row = Job.objects.get(id=job.id)
    assert (row.status, row.failed_times, row.cid, t.cid) == ("todo", 0, 3, 3)
    assert Attempt.objects.get(job_id=job.id).outcome == "released"


class LoseCommitAnswer:
    """Fault injection: the transaction COMMITs on the server, then the answer is lost on the way back.

    ``LoseAnswer`` raises inside ``transaction.atomic``, so the UPDATE is rolled back and only the "it did not
    happen" half of a lost answer is tested. Here the real COMMIT runs first; what follows is what a client sees
    when the connection dies after the server committed (KILL, network cut): error 2013, the change in place.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, using: str = DB) -> None:
        self.lost = 0
        conn = connections[using]
        commit = conn.commit

        def commit_then_lose_the_answer() -> None:
            commit()
            if not self.lost:
                self.lost += 1
                raise OperationalError(2013, "Lost connection to MySQL server during query")

        monkeypatch.setattr(conn, "commit", commit_then_lose_the_answer)


def attempts_of(*ids: int) -> list[tuple[int, int, str]]:
    return list(Attempt.objects.filter(job_id__in=ids).order_by("job_id", "number")
                .values_list("job_id", "number", "outcome"))


@pytest.mark.parametrize(("failed_before", "status"), [(0, "todo"), (2, "failed")])
def test_a_failure_committed_before_its_answer_was_lost_is_recorded_once(monkeypatch, failed_before,
                                                                         status) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")  # max_failed_times 3: the 3rd failure is final
    Job.objects.filter(id=job.id).update(failed_times=failed_before)
    [claimed] = claim_one(job)
    fault = LoseCommitAnswer(monkeypatch)
    result = sm.finish_failed("record", claimed, get_task("record").options, error="Traceback: boom",
                              error_class="x.Boom", worker="w", using=DB)  # no CommitConflict
    assert fault.lost == 1, "the failure was committed in a transaction, and its answer lost"
    assert (result.status, result.cid) == (status, 3)
    row = Job.objects.get(id=job.id)
    assert (row.status, row.cid, row.failed_times, row.last_error) == (status, 3, failed_before + 1, "Traceback: boom")
    assert attempts_of(job.id) == [(job.id, 1, "failed")]


def test_a_manual_commit_committed_before_its_answer_was_lost_is_not_a_conflict(monkeypatch, redis,
                                                                                key_prefix) -> None:  # type: ignore[no-untyped-def]
    # Meepo's Commit(id, cid, status) from outside the job: todo counts a failure and runs the job again.
    job = Job.objects.push("manual", json={})
    [claimed] = claim_one(job)
    fault = LoseCommitAnswer(monkeypatch)
    result = api.commit(job.id, claimed.cid, "todo")
    assert fault.lost == 1
    assert (result.status, result.cid) == ("todo", 3)
    row = Job.objects.get(id=job.id)
    assert (row.status, row.cid, row.failed_times) == ("todo", 3, 1)
    assert attempts_of(job.id) == [(job.id, 1, "failed")]


def test_a_hand_back_committed_before_its_answer_was_lost_is_recorded_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    jobs = [Job.objects.push("record", b"%d" % i) for i in range(2)]
    claimed = sm.claim("record", [sm.Ref(j.id, 1) for j in jobs], worker="w", lease_seconds=30, using=DB)
    fault = LoseCommitAnswer(monkeypatch)
    changed = sm.release("record", claimed, worker="w", using=DB, reason="shutdown")
    assert fault.lost == 1
    ids = sorted(j.id for j in jobs)
    assert sorted((t.id, t.status, t.cid) for t in changed) == [(i, "todo", 3) for i in ids], \
        "the jobs handed back are reported, not lost"
    rows = list(Job.objects.filter(id__in=ids).order_by("id").values_list("status", "cid", "failed_times"))
    assert rows == [("todo", 3, 0)] * 2
    assert attempts_of(*ids) == [(i, 1, "released") for i in ids]


@pytest.mark.parametrize(("task", "status"), [("zombie_todo", "todo"), ("zombie_failed", "failed")])
def test_a_lease_expiry_committed_before_its_answer_was_lost_is_recorded_once(monkeypatch, task,
                                                                              status) -> None:  # type: ignore[no-untyped-def]
    jobs = [Job.objects.push(task, b"{}") for _ in range(2)]
    sm.claim(task, [sm.Ref(j.id, 1) for j in jobs], worker="dead", lease_seconds=1, using=DB)
    fault = LoseCommitAnswer(monkeypatch)
    outcome = sm.expire_leases(task, get_task(task).options, using=DB, now=timezone.now() + timedelta(seconds=5))
    assert fault.lost == 1
    ids = sorted(j.id for j in jobs)
    assert outcome.found == 2
    assert sorted((t.id, t.status, t.cid) for t in outcome.changed) == [(i, status, 3) for i in ids], \
        "the rescued jobs are reported (so that they are dispatched), not lost"
    rows = list(Job.objects.filter(id__in=ids).order_by("id").values_list("status", "cid", "failed_times", "rescues"))
    assert rows == [(status, 3, 1, 1)] * 2
    assert attempts_of(*ids) == [(i, 1, "lease_expired") for i in ids]


def test_a_repush_committed_before_its_answer_was_lost_records_the_closed_run_once(monkeypatch, redis,
                                                                                  key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"x")
    [claimed] = claim_one(job)
    sm.finish_done("record", [claimed.ref], using=DB)
    fault = LoseCommitAnswer(monkeypatch)  # the repush writes the done run's Attempt in its transaction
    result = api.repush(job.id)
    assert fault.lost == 1
    assert result.cid == 4
    assert (Job.objects.get(id=job.id).status, Job.objects.get(id=job.id).cid) == ("todo", 4)
    assert attempts_of(job.id) == [(job.id, 1, "done")]


# ------------------------------------------------------------------------------------------- api.commit: bad cid

@pytest.mark.parametrize(
    ("bad_cid", "error", "fragment"),
    [
        (lambda cid: -1, InvalidJob, "cid must be a positive integer, not -1"),
        (lambda cid: 0, InvalidJob, "cid must be a positive integer, not 0"),
        (lambda cid: "abc", InvalidJob, "cid must be a positive integer, not 'abc'"),
        (lambda cid: "-2", InvalidJob, "cid must be a positive integer, not '-2'"),
        (lambda cid: float(cid), InvalidJob, "cid must be a positive integer, not 2.0"),
        (lambda cid: None, InvalidJob, "cid must be a positive integer, not None"),
        (lambda cid: True, InvalidJob, "cid must be a positive integer, not True"),
        (lambda cid: cid - 1, CommitConflict,
         r"cannot commit job \d+ 'done' at cid 1: it is 'doing' at cid 2; nothing was written"),
        (lambda cid: cid + 1, CommitConflict,
         r"cannot commit job \d+ 'done' at cid 3: it is 'doing' at cid 2; nothing was written"),
    ],
    ids=["negative", "zero", "text", "negative-text", "float", "none", "bool", "stale", "ahead"],
)
def test_api_commit_with_a_bad_cid_is_named_and_writes_nothing(bad_cid, error, fragment, redis,
                                                               key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("manual", json={})
    [claimed] = claim_one(job)  # doing at cid 2
    state = ("id", "status", "cid", "failed_times", "attempts", "token", "updated_at", "last_error", "due_at")
    before = list(Job.objects.values_list(*state))
    queue_before = queued_entries(redis, key_prefix, job.task)
    with pytest.raises(error, match=fragment):
        api.commit(job.id, bad_cid(claimed.cid), "done")
    assert list(Job.objects.values_list(*state)) == before
    assert not Attempt.objects.exists()
    assert queued_entries(redis, key_prefix, job.task) == queue_before
    api.commit(job.id, claimed.cid, "done")  # the run itself can still commit
    assert Job.objects.get(id=job.id).status == "done"


def test_api_commit_with_the_cid_of_an_earlier_run_is_a_conflict_and_writes_nothing(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("manual", json={})
    [first_run] = claim_one(job)
    api.repush(job.id)  # cid 3, todo (due REPUSH_RUNNING_DELAY later: it was running)
    [second_run] = claim_one(job, cid=3, later=REPUSH_RUNNING_DELAY)  # cid 4, doing
    before = list(Job.objects.values_list("id", "status", "cid", "failed_times", "token", "updated_at"))
    for status in ("done", "failed", "todo"):
        with pytest.raises(CommitConflict, match=r"at cid 2: it is 'doing' at cid 4; nothing was written") as caught:
            api.commit(job.id, first_run.cid, status)
        assert (caught.value.expected_cid, caught.value.actual_cid, caught.value.actual_status) == (2, 4, "doing")
    assert list(Job.objects.values_list("id", "status", "cid", "failed_times", "token", "updated_at")) == before
    assert second_run.cid == 4
