"""push_many refuses a batch that is not a batch; an unexpected dispatch error never reaches the caller."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction

from django_meepo import InvalidPayload, Job, outbox

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(("kwargs", "given"), [
    ({"json": {"a": 1}}, "dict"),      # once pushed one job whose payload was "a"
    ({"json": "abc"}, "str"),          # once pushed three jobs
    ({"payloads": b"ab"}, "bytes"),    # once failed with "... not int"
    ({"payloads": 42}, "int"),
])
def test_push_many_refuses_a_single_payload_given_as_the_batch(kwargs, given, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidPayload, match=rf"push_many: (json|payloads)= must be a list .* not a single {given}"):
        Job.objects.push_many("record", **kwargs)
    assert Job.objects.count() == 0


def test_push_many_takes_any_iterable(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    jobs = Job.objects.push_many("record", json=({"n": n} for n in range(3)))
    assert len(jobs) == 3 and Job.objects.count() == 3


class Broken:
    def dispatch(self, items: object, **kwargs: object) -> None:
        raise ValueError("Redis URL must specify one of the following schemes")  # what a LOCATION typo raises


def test_an_unexpected_dispatch_error_is_logged_not_raised(monkeypatch, caplog, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(outbox, "process_dispatcher", Broken)
    with caplog.at_level(logging.WARNING, logger="django_meepo"), transaction.atomic():
        job = Job.objects.push("record", b"x")
    outbox.flush()
    # The commit happened; a caller that saw an exception here would push the job a second time.
    assert Job.objects.filter(id=job.id, status="todo").exists()
    [record] = [r for r in caplog.records if "not dispatched" in r.getMessage()]
    assert "ValueError" in record.getMessage() and record.exc_info is not None, "a bug is logged with its traceback"
