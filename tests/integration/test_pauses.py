"""Pausing and resuming tasks: api.pause/resume/paused, the commands, and a worker's cached paused set."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError

from django_meepo import Job, api
from django_meepo.exceptions import UnknownTask
from django_meepo.models import TaskPause
from django_meepo.pauses import PausedSet

pytestmark = pytest.mark.django_db(transaction=True)


def stored() -> list[str]:
    return sorted(TaskPause.objects.values_list("task", flat=True))


def test_pause_resume_and_paused() -> None:
    assert api.pause("record", "other", by="alice") == ["record", "other"]
    assert api.pause("record") == []  # already paused: nothing more
    rows = api.paused()
    assert [(p.task, p.paused_by) for p in rows] == [("other", "alice"), ("record", "alice")]
    assert all(p.paused_at is not None for p in rows)
    assert api.resume("record") == ["record"]
    assert api.resume("record") == []  # run twice: nothing the second time
    assert stored() == ["other"]


def test_an_unknown_task_is_refused_and_nothing_is_written() -> None:
    with pytest.raises(UnknownTask, match=r"unknown task\(s\) 'nope', 'nada' \(declared tasks: .*record"):
        api.pause("record", "nope", "nada")
    assert stored() == []
    api.pause("record")
    with pytest.raises(UnknownTask, match="'nope'"):
        api.resume("record", "nope")
    assert stored() == ["record"]  # the known one was not resumed either
    with pytest.raises(ValueError, match="at least one task"):
        api.pause()


def test_a_paused_task_no_longer_declared_can_still_be_resumed() -> None:
    TaskPause.objects.create(task="gone_task", paused_at=Job.objects.push("record", json={}).created_at)
    assert api.resume("gone_task") == ["gone_task"]


def test_pushes_are_accepted_while_paused() -> None:
    api.pause("record")
    job = Job.objects.push("record", json={})
    assert Job.objects.get(id=job.id).status == "todo"


def test_the_commands() -> None:
    out = StringIO()
    call_command("meepo_pause", "record", "other", "--by", "bob", stdout=out)
    call_command("meepo_pause", "record", stdout=out)
    assert out.getvalue().splitlines() == ["paused record, other", "already paused: record"]
    assert TaskPause.objects.get(task="record").paused_by == "bob"
    with pytest.raises(CommandError, match=r"unknown task.*'nope'.*nothing was paused"):
        call_command("meepo_pause", "nope", stdout=out)
    with pytest.raises(CommandError, match=r"unknown task.*'nope'.*nothing was resumed"):
        call_command("meepo_resume", "record", "nope", stdout=out)
    out = StringIO()
    call_command("meepo_resume", "record", "other", "manual", stdout=out)
    assert out.getvalue().splitlines() == ["resumed record, other", "not paused: manual"]
    assert stored() == []


def test_a_workers_paused_set_is_read_at_most_once_a_second() -> None:
    now = [100.0]
    view = PausedSet(["record", "other"], using="default", clock=lambda: now[0])
    assert view.get() == frozenset()
    api.pause("record", "manual")
    assert view.get() == frozenset()  # cached
    now[0] += 1.0
    assert view.get() == {"record"}  # only its own tasks
    api.resume("record")
    now[0] += 0.5
    assert view.get() == {"record"}
    now[0] += 0.5
    assert view.get() == frozenset()


def test_a_failed_read_keeps_the_last_known_set_and_is_logged(  # type: ignore[no-untyped-def]
        monkeypatch, caplog) -> None:
    now = [100.0]
    view = PausedSet(["record"], using="default", clock=lambda: now[0])
    api.pause("record")
    assert view.get() == {"record"}

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise DatabaseError("the database went away")

    monkeypatch.setattr(TaskPause.objects, "using", broken)
    TaskPause.objects.filter(task="record").delete()  # resumed meanwhile; the worker cannot see it
    now[0] += 1.0
    with caplog.at_level(logging.WARNING, logger="django_meepo"):
        assert view.get() == {"record"}  # still paused, as last read
        now[0] += 1.0
        assert view.get() == {"record"}
    warnings = [r.getMessage() for r in caplog.records if "paused tasks" in r.getMessage()]
    assert len(warnings) == 1 and "the database went away" in warnings[0] and "record" in warnings[0]
    monkeypatch.undo()
    now[0] += 1.0
    assert view.get() == frozenset()
