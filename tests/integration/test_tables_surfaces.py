"""Around a task's own job table (tables.py): stats, purge and retention, the operator commands and bulk actions
each find its jobs there, and a job of the shared table with the same id is left alone."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_meepo import Job, operations, purge, stats
from django_meepo import statemachine as sm
from django_meepo.models import AbstractJob
from testproject.models import OwnAttempt, OwnJob
from tests.integration.test_tables import colliding

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def state(model: type[AbstractJob], job_id: int) -> tuple[str, int]:
    row = model.objects.get(id=job_id)
    return row.status, row.cid


def test_stats_count_the_jobs_of_every_table(key_prefix: str) -> None:
    _shared, own = colliding()
    OwnJob.objects.push_many("other_own", json=[{}, {}])
    sm.claim("record_own", [sm.Ref(own.id, 1)], worker="w-own", lease_seconds=30, using=DB)
    snap = stats.collect(redis=False)
    by_name = {t.name: t for t in snap.tasks}
    assert by_name["record_own"].counts["doing"] == 1
    assert by_name["other_own"].counts["todo"] == 2
    assert by_name["record"].counts["todo"] == Job.objects.filter(task="record").count()
    assert [(j.task, j.id) for j in snap.orphans] == [("record_own", own.id)]  # no live worker holds it
    assert snap.totals["todo"] == Job.objects.count() + 2 + OwnJob.objects.filter(task="record_own").count() - 1


def test_purge_and_retention_delete_finished_jobs_of_every_table(settings: object, key_prefix: str) -> None:
    shared, own = colliding()
    old = timezone.now() - timedelta(days=10)
    OwnJob.objects.filter(id=own.id).update(status="done", finished_at=old)
    OwnAttempt.objects.create(job_id=own.id, number=1, finished_at=old, outcome="failed")
    Job.objects.filter(id=shared.id).update(status="todo")
    assert [q.model for q in purge.selections(purge.cutoff_for(7))] == [Job, OwnJob]
    assert [q.model for q in purge.selections(purge.cutoff_for(7), tasks=["record_own"])] == [OwnJob]
    out = run("meepo_purge", "--days", "7")
    assert "deleted 1 finished job(s) and 1 attempt(s)" in out
    assert not OwnJob.objects.filter(id=own.id).exists() and not OwnAttempt.objects.exists()
    assert Job.objects.filter(id=shared.id).exists(), "the shared job with the same id is kept"
    again = OwnJob.objects.push("record_own", json={})
    OwnJob.objects.filter(id=again.id).update(status="failed", finished_at=old)
    settings.MEEPO = {**settings.MEEPO, "RETENTION_DAYS": 7}  # type: ignore[attr-defined]
    assert purge.Retention(using=DB, holder="t").step(timezone.now(), 0.0) == 1
    assert not OwnJob.objects.filter(id=again.id).exists()


def test_the_repush_and_cancel_commands_take_the_task_of_the_ids(key_prefix: str) -> None:
    shared, own = colliding()
    assert "repushed 1 job(s)" in run("meepo_repush", str(own.id), "--task", "record_own")
    assert state(OwnJob, own.id) == ("todo", 2) and state(Job, shared.id) == ("todo", 1)
    assert "repushed 1 job(s)" in run("meepo_repush", str(shared.id))  # no task: the shared table, as before
    assert state(Job, shared.id) == ("todo", 2) and state(OwnJob, own.id) == ("todo", 2)
    with pytest.raises(CommandError, match="different tables"):
        run("meepo_repush", "--task", "record", "--task", "record_own")
    assert "cancelled 1 job(s)" in run("meepo_cancel", str(own.id), "--task", "record_own")
    assert state(OwnJob, own.id) == ("cancelled", 3) and state(Job, shared.id) == ("todo", 2)
    shown = json.loads(run("meepo_stats", "--job", f"record_own:{own.id}", "--json"))
    assert (shown["task"], shown["status"]) == ("record_own", "cancelled")
    assert json.loads(run("meepo_stats", "--job", str(shared.id), "--json"))["task"] == "record"


def test_bulk_actions_on_an_own_table_selection(key_prefix: str) -> None:
    shared, own = colliding()
    other = OwnJob.objects.push("other_own", json={})
    selection = operations.select_jobs(tasks=["record_own", "other_own"])
    assert selection.model is OwnJob
    assert operations.commit_selection(selection, "failed").changed == OwnJob.objects.count()
    assert state(OwnJob, own.id)[0] == state(OwnJob, other.id)[0] == "failed"
    assert state(Job, shared.id) == ("todo", 1)
    assert operations.repush_selection(selection).changed == OwnJob.objects.count()
    assert operations.cancel_selection(selection).changed == OwnJob.objects.count()
    assert set(OwnJob.objects.values_list("status", flat=True)) == {"cancelled"}
    assert state(Job, shared.id) == ("todo", 1)
