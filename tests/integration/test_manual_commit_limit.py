"""A job function that commits ``todo`` counts a failure; the MAX_FAILED_TIMES-th such failure ends it ``failed``."""

from __future__ import annotations

import pytest

from django_meepo import Job
from django_meepo import statemachine as sm
from django_meepo.models import Attempt
from django_meepo.registry import get_task

pytestmark = pytest.mark.django_db(transaction=True)


def test_committing_todo_for_ever_ends_failed_at_max_failed_times(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    task = get_task("manual")
    assert task.options.max_failed_times == 3
    job = Job.objects.push("manual", json={"commit": "todo"})
    statuses = []
    for attempt in range(1, 4):
        row = Job.objects.get(id=job.id)
        [claimed] = sm.claim("manual", [sm.Ref(job.id, row.cid)], worker="w", lease_seconds=30, using="default")
        result = sm.job_commit("manual", claimed, "todo", task.options, worker="w", using="default")
        statuses.append(result.status)
        assert Job.objects.get(id=job.id).failed_times == attempt
    assert statuses == ["todo", "todo", "failed"], "the third failure of a task allowing 3 is final"
    row = Job.objects.get(id=job.id)
    assert (row.status, row.failed_times, row.attempts) == ("failed", 3, 3)
    assert "MAX_FAILED_TIMES" in row.last_error
    assert Attempt.objects.filter(job_id=job.id, outcome="failed").count() == 3
