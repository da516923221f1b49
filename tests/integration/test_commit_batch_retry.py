"""A batch of outcomes retried after a database error commits each outcome once: no false conflict, no double count."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError

from django_meepo import Job
from django_meepo import statemachine as sm
from django_meepo.context import JobContext
from django_meepo.execution import DONE, FAILED, RunOutcome
from django_meepo.holdings import Held
from django_meepo.models import Attempt
from django_meepo.registry import get_task
from django_meepo.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_retried_batch_does_not_commit_its_failure_twice(monkeypatch, caplog, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    worker = Worker([get_task("record")], sweep=False)
    jobs = Job.objects.push_many("record", json=[{}, {}])
    claimed = sm.claim("record", [sm.Ref(j.id, 1) for j in jobs], worker=worker.id, lease_seconds=30,
                       using="default")
    by_id = {c.id: c for c in claimed}
    failing, succeeding = (Held(ctx=JobContext(job=by_id[j.id], _commit=worker._job_commit,
                                                _heartbeat=worker._job_heartbeat), task=get_task("record"))
                           for j in jobs)
    real_finish_done = sm.finish_done
    calls = []

    def finish_done_failing_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:  # the failure of the batch's first job is committed by now
            raise OperationalError(2006, "MySQL server has gone away")
        return real_finish_done(*args, **kwargs)

    monkeypatch.setattr(sm, "finish_done", finish_done_failing_once)
    monkeypatch.setattr("django_meepo.committer.time.sleep", lambda _: None)
    with caplog.at_level(logging.WARNING, logger="django_meepo"):
        worker.committer.commit_batch([(failing, RunOutcome(FAILED, error="boom", error_class="builtins.ValueError")),
                              (succeeding, RunOutcome(DONE))])
    assert len(calls) == 2, "the batch was retried"
    assert Job.objects.get(id=failing.ctx.id).failed_times == 1
    assert Attempt.objects.filter(job_id=failing.ctx.id).count() == 1
    assert Job.objects.get(id=succeeding.ctx.id).status == "done"
    assert worker.failed == 1 and worker.processed == 2
    assert not any("cannot" in r.getMessage() for r in caplog.records), "no false conflict on the retry"


# --------------------------------------------------------------------------------------------- poison outcomes
# A poison outcome is one the database refuses. RunOutcome makes its texts storable when built, so these tests
# force a raw value past it (object.__setattr__) or inject the driver's error: that is the fault under test.

def _held(worker: Worker, count: int, task: str = "record") -> list[Held]:
    jobs = Job.objects.push_many(task, json=[{} for _ in range(count)])
    claimed = sm.claim(task, [sm.Ref(j.id, 1) for j in jobs], worker=worker.id, lease_seconds=30, using="default")
    by_id = {c.id: c for c in claimed}
    items = [Held(ctx=JobContext(job=by_id[j.id], _commit=worker._job_commit, _heartbeat=worker._job_heartbeat),
                  task=get_task(task)) for j in jobs]
    for h in items:
        worker.holdings.add(h)
    return items


def _raw(kind: str, **texts: str) -> RunOutcome:
    outcome = RunOutcome(kind)
    for name, value in texts.items():
        object.__setattr__(outcome, name, value)
    return outcome


@pytest.fixture
def no_endless_retry(monkeypatch):  # type: ignore[no-untyped-def]
    """The committer's pauses cost nothing, and a batch retried for ever fails the test instead of hanging it."""
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) > 50:
            raise AssertionError("the committer retries the same outcomes for ever")

    monkeypatch.setattr("django_meepo.committer.time.sleep", sleep)
    return pauses


def test_a_result_the_driver_cannot_encode_fails_its_job_and_the_rest_of_the_batch_is_done(no_endless_retry,  # type: ignore[no-untyped-def]
                                                                                           redis, key_prefix) -> None:
    worker = Worker([get_task("record")], sweep=False)
    good1, bad, good2 = _held(worker, 3)
    worker.committer.commit_batch([(good1, RunOutcome(DONE, result="one")), (bad, _raw(DONE, result="x\ud800")),
                                   (good2, RunOutcome(DONE, result="two"))])
    rows = {j.id: j for j in Job.objects.filter(id__in=[good1.ctx.id, bad.ctx.id, good2.ctx.id])}
    assert (rows[good1.ctx.id].status, rows[good1.ctx.id].result) == ("done", "one")
    assert (rows[good2.ctx.id].status, rows[good2.ctx.id].result) == ("done", "two")
    poisoned = rows[bad.ctx.id]
    assert poisoned.status == "failed", "recorded failed, final: it is not run again"
    assert "the run ended 'done'" in poisoned.last_error and "UnicodeEncodeError" in poisoned.last_error
    assert Attempt.objects.get(job_id=bad.ctx.id).error_class == "builtins.UnicodeEncodeError"
    assert worker.holdings.jobs == {} and worker.processed == 3


def test_a_database_error_on_one_outcome_is_tried_a_few_times_then_split_off(monkeypatch, no_endless_retry,  # type: ignore[no-untyped-def]
                                                                             redis, key_prefix) -> None:
    from django.db import DataError

    worker = Worker([get_task("record")], sweep=False)
    good, bad, failing = _held(worker, 3)
    real_finish_done = sm.finish_done

    def refuse_the_bad_one(task, refs, **kwargs):  # type: ignore[no-untyped-def]
        if any(r.id == bad.ctx.id for r in refs):
            raise DataError(1406, "Data too long for column 'result'")
        return real_finish_done(task, refs, **kwargs)

    monkeypatch.setattr(sm, "finish_done", refuse_the_bad_one)
    worker.committer.commit_batch([(good, RunOutcome(DONE)), (bad, RunOutcome(DONE, result="r")),
                                   (failing, RunOutcome(FAILED, error="boom", error_class="builtins.ValueError"))])
    assert Job.objects.get(id=good.ctx.id).status == "done"
    poisoned = Job.objects.get(id=bad.ctx.id)
    assert poisoned.status == "failed" and "Data too long for column 'result'" in poisoned.last_error
    assert Job.objects.get(id=failing.ctx.id).failed_times == 1, "the failure was recorded once, not once a try"
    assert Attempt.objects.filter(job_id=failing.ctx.id).count() == 1
    assert 2 <= len(no_endless_retry) <= 10, "tried a few times (a deadlock would pass), not for ever"
    assert worker.holdings.jobs == {}


def test_an_outcome_that_cannot_be_recorded_even_as_failed_is_dropped_not_retried(monkeypatch, caplog,  # type: ignore[no-untyped-def]
                                                                                  no_endless_retry, redis,
                                                                                  key_prefix) -> None:
    worker = Worker([get_task("record")], sweep=False)
    (held,) = _held(worker, 1)

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise TypeError("driver bug")

    monkeypatch.setattr(sm, "finish_done", broken)
    monkeypatch.setattr(sm, "finish_failed", broken)
    with caplog.at_level(logging.ERROR, logger="django_meepo"):
        worker.committer.commit_batch([(held, RunOutcome(DONE))])
    assert Job.objects.get(id=held.ctx.id).status == "doing", "left to its lease and the sweeper"
    assert worker.holdings.jobs == {}, "dropped: its lease is no longer renewed"
    assert any(f"job {held.ctx.id}: could not record it as failed either" in r.getMessage() for r in caplog.records)


def test_the_commit_thread_survives_a_poison_outcome_and_records_the_next(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    import threading

    worker = Worker([get_task("record")], sweep=False)
    bad, good = _held(worker, 2)
    thread = threading.Thread(target=worker.committer.run)
    thread.start()
    worker.committer.put(bad, _raw(FAILED, error="Traceback …\nValueError: \udcff", error_class="builtins.ValueError"))
    worker.committer.put(good, RunOutcome(DONE, result="fine"))
    worker.committer.stop()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert Job.objects.get(id=good.ctx.id).status == "done"
    # The state machine stores clean text whoever built the outcome: the failure is recorded as any other (a
    # retry), its lone surrogate kept as a visible escape.
    bad_row = Job.objects.get(id=bad.ctx.id)
    assert (bad_row.status, bad_row.failed_times) == ("todo", 1)
    assert "\\udcff" in bad_row.last_error


def test_a_database_that_refuses_writes_for_a_while_does_not_fail_a_run_that_succeeded(monkeypatch, no_endless_retry,  # type: ignore[no-untyped-def]
                                                                                        redis, key_prefix) -> None:
    # A read-only primary during a failover (1290) says nothing about the outcome: it is retried, not split off
    # and recorded 'failed' after a few tries.
    worker = Worker([get_task("record")], sweep=False)
    [held] = _held(worker, 1)
    real_finish_done = sm.finish_done
    refusals = []

    def read_only_for_a_while(*args, **kwargs):  # type: ignore[no-untyped-def]
        if len(refusals) < 8:
            refusals.append(1)
            raise OperationalError(1290, "The MariaDB server is running with the --read-only option")
        return real_finish_done(*args, **kwargs)

    monkeypatch.setattr(sm, "finish_done", read_only_for_a_while)
    worker.committer.commit_batch([(held, RunOutcome(DONE, result="ok"))])
    row = Job.objects.get(id=held.ctx.id)
    assert (row.status, row.result, row.failed_times) == ("done", "ok", 0)
    assert len(refusals) == 8
