"""``manage.py meepo_cancel``: cancels by id, lists what it left alone, and refuses bad input writing nothing."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from django_meepo.models import Job
from tests.integration.test_operator_commands import fail, job, run

pytestmark = pytest.mark.django_db


def test_cancel_by_ids_with_a_note() -> None:
    a, b = job("todo"), job("doing", cid=2)
    out, err = run("meepo_cancel", str(a.id), str(b.id), "--note", "wrong customer")
    assert out.strip() == "cancelled 2 job(s)" and err == ""
    rows = list(Job.objects.filter(id__in=[a.id, b.id]).order_by("id").values_list("status", "cid", "last_error"))
    assert rows == [("cancelled", 2, "wrong customer"), ("cancelled", 3, "wrong customer")]


def test_finished_jobs_are_left_alone_and_listed() -> None:
    a, done = job("todo"), job("done", cid=4)
    out, err = run("meepo_cancel", str(a.id), str(done.id))
    assert out.strip() == "cancelled 1 job(s); 1 left alone"
    assert f"left alone: job {done.id} is 'done': only a job in todo, doing, zombie can be cancelled" in err
    assert Job.objects.get(id=done.id).status == "done" and Job.objects.get(id=a.id).status == "cancelled"


@pytest.mark.parametrize(("args", "fragment"), [
    (("abc",), "bad job id 'abc': a job id is a positive integer"),
    (("0",), "bad job id '0'"),
    (("-3",), "bad job id '-3'"),
    (("999999999",), "no job with id 999999999; nothing was cancelled"),
])
def test_bad_ids_are_named_and_nothing_is_cancelled(args, fragment) -> None:  # type: ignore[no-untyped-def]
    job("todo")
    known = job("todo")
    assert fragment in fail("meepo_cancel", str(known.id), *args)


def test_ids_are_required() -> None:
    with pytest.raises(Exception, match="the following arguments are required: id"):
        call_command("meepo_cancel")
