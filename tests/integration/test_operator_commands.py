"""The operator commands: meepo_push, meepo_repush, meepo_purge, meepo_stats — happy paths and every bad argument."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_meepo.dispatch.redis import queued_entries
from django_meepo.models import Attempt, Job

pytestmark = pytest.mark.django_db


def run(*args: str, stdin: bytes | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def job(status: str = "todo", task: str = "record", **fields: object) -> Job:
    pushed = Job.objects.push(task, json={})
    Job.objects.filter(id=pushed.id).update(status=status, **fields)
    return Job.objects.get(id=pushed.id)


def fail(*args: str) -> str:
    before = list(Job.objects.order_by("id").values_list("id", "status", "cid"))
    with pytest.raises(CommandError) as exc:
        run(*args)
    assert list(Job.objects.order_by("id").values_list("id", "status", "cid")) == before, "nothing changed"
    return str(exc.value)


# ------------------------------------------------------------------------------------------------ meepo_push

@pytest.mark.django_db(transaction=True)
def test_push_from_an_argument_is_dispatched(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    out, _ = run("meepo_push", "record", "héllo")
    pushed = Job.objects.get(id=int(out))
    assert (pushed.task, pushed.payload_bytes, pushed.status) == ("record", "héllo".encode(), "todo")
    assert queued_entries(redis, key_prefix, "record") == [f"{pushed.id}:1".encode()]


def test_push_json_from_a_file_and_from_stdin(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "payload.json"
    path.write_text('{ "to": "a@example.com",  "n": 1 }')
    out, _ = run("meepo_push", "record", "--file", str(path), "--json", "--priority", "60", "--delay", "30")
    pushed = Job.objects.get(id=int(out))
    assert pushed.payload_bytes == b'{"to":"a@example.com","n":1}' and pushed.priority == 60
    assert pushed.due_at > timezone.now() + timedelta(seconds=20)
    out, _ = run("meepo_push", "record", "-", stdin=b"\x00\x01raw", monkeypatch=monkeypatch)
    assert Job.objects.get(id=int(out)).payload_bytes == b"\x00\x01raw"


@pytest.mark.parametrize("args", [
    ("record", "--json", '{"key": "x"}'),  # the payload after the flag (a new user's first try)
    ("--json", "record", '{"key": "x"}'),  # the README's form
    ("record", '{"key": "x"}', "--json"),
])
def test_push_json_flag_anywhere(args) -> None:  # type: ignore[no-untyped-def]
    out, _ = run("meepo_push", *args)
    assert Job.objects.get(id=int(out)).payload_bytes == b'{"key":"x"}'


def test_push_with_delay_zero_is_due_now() -> None:
    before = timezone.now()
    out, _ = run("meepo_push", "record", "x", "--delay", "0")
    pushed = Job.objects.get(id=int(out))
    assert before - timedelta(seconds=5) <= pushed.due_at <= timezone.now() + timedelta(seconds=1)


def test_push_with_an_idempotency_key_twice_gives_the_same_job() -> None:
    first, _ = run("meepo_push", "record", "x", "--idempotency-key", "k1")
    second, err = run("meepo_push", "record", "x", "--idempotency-key", "k1")
    assert first == second and "already existed" in err
    assert Job.objects.filter(idempotency_key="k1").count() == 1


@pytest.mark.parametrize(("args", "message"), [
    (("nope", "x"), "unknown task 'nope'"),
    (("record", "{bad", "--json"), "--json: the payload is not JSON"),
    (("record", "x", "--file", "/nonexistent/p"), "give the payload either as an argument or with --file"),
    (("record", "--file", "/nonexistent/p"), "cannot read --file '/nonexistent/p'"),
    (("record", "x", "--priority", "500"), "priority must be an integer from -100 to 100"),
    (("record", "x", "--priority", "high"), "--priority must be an integer"),
    (("record", "x", "--delay", "-3"), "--delay must be a number of seconds >= 0"),
    (("record", "x", "--delay", "soon"), "--delay must be a number of seconds >= 0"),
    (("record", "x", "--delay", "inf"), "--delay must be a number of seconds >= 0"),
])
def test_push_bad_arguments(args, message) -> None:  # type: ignore[no-untyped-def]
    assert message in fail("meepo_push", *args)
    assert not Job.objects.exists()


def test_push_over_the_size_limit(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MEEPO = {**settings.MEEPO, "MAX_PAYLOAD_BYTES": 4}
    assert "over the limit of 4 bytes" in fail("meepo_push", "record", "too long")


# ------------------------------------------------------------------------------------------------ meepo_repush

def test_repush_by_ids() -> None:
    a, b, c = job("failed", cid=3, failed_times=3), job("done", cid=5), job("failed")
    out, err = run("meepo_repush", str(a.id), str(b.id))
    assert "repushed 2 job(s)" in out and "repushing [" in err and "2/2 100%" in err
    rows = {r.id: r for r in Job.objects.all()}
    assert (rows[a.id].status, rows[a.id].cid, rows[a.id].failed_times) == ("todo", 4, 0)
    assert (rows[b.id].status, rows[b.id].cid) == ("todo", 6)
    assert rows[c.id].status == "failed"


def test_repush_by_filter_and_dry_run() -> None:
    old = timezone.now() - timedelta(hours=3)
    stuck = [job("zombie", updated_at=old) for _ in range(3)]
    fresh = job("zombie")
    other_task = job("zombie", task="other", updated_at=old)
    out, _ = run("meepo_repush", "--task", "record", "--status", "zombie", "--older-than", "2h", "--dry-run")
    assert out.strip() == "would repush 3 job(s): zombie 3 (dry run: nothing was changed)"
    assert set(Job.objects.values_list("status", flat=True)) == {"zombie"}
    out, _ = run("meepo_repush", "--task", "record", "--status", "zombie", "--older-than", "2h", "-v", "0")
    assert "repushed 3 job(s)" in out
    assert [Job.objects.get(id=j.id).status for j in [*stuck, fresh, other_task]] == [
        "todo", "todo", "todo", "zombie", "zombie"]


@pytest.mark.parametrize(("args", "message"), [
    ((), "give job ids or a filter"),
    (("abc",), "bad job id 'abc'"),
    (("0",), "bad job id '0'"),
    (("999999999",), "no job with id 999999999"),
    (("--task", "nope"), "unknown task 'nope'"),
    (("--status", "lost"), "--status 'lost' is not one of todo, doing, done, failed, zombie, cancelled"),
    (("--older-than", "soon"), "--older-than must be a positive duration"),
    (("--older-than", "0h"), "--older-than must be a positive duration"),
])
def test_repush_bad_arguments(args, message) -> None:  # type: ignore[no-untyped-def]
    job("failed")
    assert message in fail("meepo_repush", *args)


def test_repush_an_existing_and_a_missing_id_changes_nothing() -> None:
    existing = job("failed")
    assert "no job with id 999999998" in fail("meepo_repush", str(existing.id), "999999998")


# ------------------------------------------------------------------------------------------------ meepo_purge

def finished(status: str, days_ago: float, task: str = "record") -> Job:
    row = job(status, task=task, finished_at=timezone.now() - timedelta(days=days_ago))
    Attempt.objects.create(job=row, number=1, finished_at=timezone.now(), outcome="failed")
    return row


def test_purge_deletes_old_finished_jobs_with_their_attempts() -> None:
    old_done, old_failed = finished("done", 10), finished("failed", 8)
    recent = finished("done", 1)
    running = job("doing", finished_at=timezone.now() - timedelta(days=30))  # not finished: never purged
    out, _ = run("meepo_purge", "--days", "7", "--dry-run")
    assert "would delete 2 finished job(s)" in out and Job.objects.count() == 4
    out, err = run("meepo_purge", "--days", "7", "--batch-size", "1")
    assert "deleted 2 finished job(s) and 2 attempt(s)" in out and "2/2 100%" in err
    assert set(Job.objects.values_list("id", flat=True)) == {recent.id, running.id}
    assert not Attempt.objects.filter(job_id__in=[old_done.id, old_failed.id]).exists()


def test_purge_filters_and_retention_default(settings) -> None:  # type: ignore[no-untyped-def]
    done, failed, other = finished("done", 3), finished("failed", 3), finished("done", 3, task="other")
    run("meepo_purge", "--days", "2", "--status", "failed", "--task", "record")
    assert set(Job.objects.values_list("id", flat=True)) == {done.id, other.id}
    settings.MEEPO = {**settings.MEEPO, "RETENTION_DAYS": 2.5}
    run("meepo_purge")
    assert not Job.objects.filter(id__in=[done.id, failed.id, other.id]).exists()


@pytest.mark.parametrize(("args", "message"), [
    ((), "give --days N"),
    (("--days", "0"), "--days must be a positive number"),
    (("--days", "x"), "--days must be a positive number"),
    (("--days", "1", "--status", "todo"), "--status 'todo' is not one of done, failed"),
    (("--days", "1", "--task", "nope"), "unknown task 'nope'"),
    (("--days", "1", "--batch-size", "0"), "--batch-size must be a positive integer"),
])
def test_purge_bad_arguments(args, message) -> None:  # type: ignore[no-untyped-def]
    finished("done", 30)
    assert message in fail("meepo_purge", *args)


# ------------------------------------------------------------------------------------------------ meepo_stats

def test_stats_table_and_json() -> None:
    job("todo")
    job("failed", finished_at=timezone.now())
    out, _ = run("meepo_stats")
    header = out.splitlines()[1]
    assert header.split()[:6] == ["task", "todo", "doing", "done", "failed", "zombie"]
    record = next(line for line in out.splitlines() if line.startswith("record "))
    assert record.split()[1:6] == ["1", "0", "0", "1", "0"]
    data = json.loads(run("meepo_stats", "--json")[0])
    by_name = {t["name"]: t for t in data["tasks"]}
    assert by_name["record"]["counts"]["failed"] == 1 and by_name["record"]["failed_last_minute"] == 1
    assert data["totals"]["todo"] == 1


def test_stats_watch_repeats() -> None:
    out, _ = run("meepo_stats", "--json", "--watch", "0.05", "--iterations", "3")
    assert len([json.loads(line) for line in out.splitlines()]) == 3


@pytest.mark.parametrize(("args", "message"), [
    (("--watch", "0"), "--watch must be a positive number"),
    (("--watch", "fast"), "--watch must be a positive number"),
    (("--watch", "1", "--iterations", "-1"), "--iterations must be a positive integer"),
])
def test_stats_bad_arguments(args, message) -> None:  # type: ignore[no-untyped-def]
    assert message in fail("meepo_stats", *args)
