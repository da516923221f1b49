"""A ``delay`` shorter than the rows' 1 µs resolution: the job must still be dispatched (issue 9, item 9).

Rows store times to the microsecond; the sweeper's due scan finds a delayed job only if ``due_at > updated_at``.
A delay that rounds to 0 µs used to give a job that was "not immediate" (so not dispatched at the commit) whose
``due_at`` equalled its ``updated_at`` (so never found by the due scan): it waited for a period scan.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction

from django_meepo import Job, outbox
from django_meepo import statemachine as sm
from django_meepo.dispatch import new_dispatcher
from django_meepo.dispatch.redis import queued_entries
from django_meepo.registry import get_task
from django_meepo.sweeper import Sweeper

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"
TINY = [1e-7, 4e-7, 5e-7, timedelta(seconds=4e-7)]  # each rounds to 0 µs


def queued_refs(redis, prefix: str, task: str = "record") -> list[bytes]:  # type: ignore[no-untyped-def]
    return queued_entries(redis, prefix, task)


def sweeper() -> Sweeper:
    return Sweeper([get_task("record")], dispatcher=new_dispatcher(), using=DB, holder="test-sweeper")


@pytest.mark.parametrize("delay", TINY, ids=repr)
def test_a_sub_microsecond_delay_is_dispatched_and_claimable(delay, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    s = sweeper()
    t0 = time.monotonic() + 1_000_000
    s.tick(monotonic=t0)  # the first tick's full scan is behind us: from here on only the due scan runs
    with transaction.atomic():
        job = Job.objects.push("record", b"{}", delay=delay)
    outbox.flush()
    s.tick(monotonic=t0 + 0.1)  # not a period tick: what the due scan (or the commit) dispatched
    row = Job.objects.get(id=job.id)
    assert row.due_at <= row.updated_at, "the delay is below the row's resolution: the job is due at once"
    assert queued_refs(redis, key_prefix) == [f"{job.id}:1".encode()], \
        f"a push with delay={delay!r} must be dispatched (at the commit), not left to a period scan"
    [claimed] = sm.claim("record", [sm.Ref(job.id, 1)], worker="w", lease_seconds=30, using=DB)
    assert claimed.id == job.id


def test_push_many_with_a_sub_microsecond_delay_is_dispatched(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    jobs = Job.objects.push_many("record", [b"a", b"b"], delay=1e-7)
    outbox.flush()
    assert sorted(queued_refs(redis, key_prefix)) == sorted(f"{j.id}:1".encode() for j in jobs)


def test_a_one_microsecond_delay_is_delayed_and_found_by_the_due_scan(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    """The boundary: 1 µs is a real delay (not dispatched at the commit), and the due scan finds it."""
    s = sweeper()
    t0 = time.monotonic() + 1_000_000
    s.tick(monotonic=t0)
    job = Job.objects.push("record", b"{}", delay=timedelta(microseconds=1))
    outbox.flush()
    row = Job.objects.get(id=job.id)
    assert row.due_at == row.updated_at + timedelta(microseconds=1)
    assert queued_refs(redis, key_prefix) == [], "a delayed job is not dispatched at the commit"
    s.tick(now=row.due_at, monotonic=t0 + 0.1)  # not a period tick: the due scan alone
    assert queued_refs(redis, key_prefix) == [f"{job.id}:1".encode()]
