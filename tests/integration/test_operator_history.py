"""A repush or an operator's commit keeps the attempt it replaces: its worker, times and how it ended."""

from __future__ import annotations

import pytest

from django_meepo import Job, api
from django_meepo import statemachine as sm
from django_meepo.exceptions import CommitConflict
from django_meepo.models import Attempt

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"


def run(job: Job, worker: str) -> sm.ClaimedJob:
    cid = Job.objects.get(id=job.id).cid
    [claimed] = sm.claim("record", [sm.Ref(job.id, cid)], worker=worker, lease_seconds=30, using=DB)
    return claimed


def outcomes(job: Job) -> list[tuple[int, str, str]]:
    return list(Attempt.objects.filter(job_id=job.id).order_by("number").values_list("number", "worker", "outcome"))


def test_a_done_run_and_runs_cut_short_stay_in_the_history(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"{}")
    first = run(job, "w1")
    sm.finish_done("record", [first.ref], using=DB)
    assert outcomes(job) == [], "a done run is described by the row itself until something replaces it"
    api.repush(job.id)  # done → todo: the done run would vanish from the row
    assert outcomes(job) == [(1, "w1", "done")]
    run(job, "w2")
    api.operator_commit(job.id, "done")  # the operator closes a run still going
    run_three = Job.objects.get(id=job.id)
    assert run_three.status == "done"
    assert outcomes(job) == [(1, "w1", "done"), (2, "w2", "superseded")]
    assert "committed 'done' by an operator" in Attempt.objects.get(job_id=job.id, number=2).error
    api.repush(job.id)  # the operator's "done" had no run behind it: nothing more to record
    run(job, "w3")
    api.repush_many([job.id])  # a bulk repush cuts run 3 short
    assert outcomes(job) == [(1, "w1", "done"), (2, "w2", "superseded"), (3, "w3", "superseded")]
    history = Job.objects.get(id=job.id).attempt_history()
    assert [(a.number, a.worker, a.outcome) for a in history] == [(1, "w1", "done"), (2, "w2", "superseded"),
                                                                   (3, "w3", "superseded")]
    assert all(a.started_at is not None and a.finished_at is not None for a in history)


def test_a_refused_change_records_nothing(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"{}")
    claimed = run(job, "w1")
    sm.finish_done("record", [claimed.ref], using=DB)
    with pytest.raises(CommitConflict):
        api.repush(job.id, cid=claimed.cid)  # the cid the operator saw is stale: the job is done at cid + 1
    assert outcomes(job) == [] and Job.objects.get(id=job.id).status == "done"
