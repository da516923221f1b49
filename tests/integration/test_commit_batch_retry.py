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
