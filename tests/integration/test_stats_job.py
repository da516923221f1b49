"""``manage.py meepo_stats --job ID``: one job's state and progress bar, as text or JSON; bad ids named."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError
from django.utils import timezone

from django_meepo import Job
from django_meepo.jobview import progress_bar
from tests.integration.test_operator_commands import run

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_job_with_progress_shows_its_bar_and_note() -> None:
    job = Job.objects.push("record", json={})
    Job.objects.filter(id=job.id).update(status="doing", cid=2, attempts=1, worker="host:1:ab", progress_done=300,
                                         progress_total=1000, progress_note="resizing", progress_at=timezone.now())
    out, _ = run("meepo_stats", "--job", str(job.id))
    lines = out.splitlines()
    assert lines[0] == f"job {job.id}: record doing (cid 2, priority 0)"
    assert "worker host:1:ab" in lines[1]
    progress = next(line for line in lines if line.startswith("  progress: "))
    assert f"[{'#' * 9}{'.' * 21}]  30% 300/1000  resizing  (reported " in progress
    data = json.loads(run("meepo_stats", "--job", str(job.id), "--json")[0])
    assert (data["progress_done"], data["progress_total"], data["progress_note"], data["status"]) == \
        (300, 1000, "resizing", "doing")
    assert data["progress_at"].startswith(str(timezone.now().year))


def test_a_job_without_progress_shows_a_dash_and_watch_repeats() -> None:
    job = Job.objects.push("record", json={})
    out, _ = run("meepo_stats", "--job", str(job.id))
    assert "  progress: -" in out.splitlines()
    out, _ = run("meepo_stats", "--job", str(job.id), "--json", "--watch", "0.05", "--iterations", "2")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [job.id, job.id]


@pytest.mark.parametrize(("value", "message"), [("0", "--job must be a positive integer, not '0'"),
                                                 ("x", "--job must be a positive integer, not 'x'"),
                                                 ("987654321", "no job with id 987654321")])
def test_a_bad_or_unknown_job_id_is_named(value, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match=message):
        run("meepo_stats", "--job", value)


def test_the_text_bar() -> None:
    assert progress_bar(None, None) == "-"
    assert progress_bar(0, 0, width=4) == "[....]   0% 0/0"
    assert progress_bar(5, 5, width=4) == "[####] 100% 5/5"
