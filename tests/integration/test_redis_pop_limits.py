"""The Redis pop script's per-task limits (a worker's room per task, slots.py), against the real Redis."""

from __future__ import annotations

import pytest

from django_meepo import Job, outbox
from django_meepo.dispatch import redis_dispatcher
from django_meepo.dispatch.redis import decode
from django_meepo.registry import get_task
from django_meepo.sweeper import source_of

pytestmark = pytest.mark.django_db(transaction=True)
WORKER = "limits-worker"


def ids(popped: dict, task: str) -> list[int]:  # type: ignore[type-arg]
    return [decode(e).id for s, entries in popped.items() if s.task == task for e in entries]  # type: ignore[union-attr]


def test_pop_hands_out_no_more_of_a_task_than_its_limit_in_every_pass() -> None:
    record = [j.id for j in Job.objects.push_many("record", json=[{} for _ in range(6)])]
    other = [j.id for j in Job.objects.push_many("other", json=[{} for _ in range(6)])]
    outbox.flush()
    d = redis_dispatcher()
    sources = [source_of(get_task("record")), source_of(get_task("other"))]
    first = d.pop(sources, 10, WORKER, {"record": 1, "other": 10})
    assert len(ids(first, "record")) == 1 and len(ids(first, "other")) == 6  # pass 2 filled from 'other' only
    # Nothing acknowledged: pass 0 hands the in-flight entries out again, within the limits too.
    again = d.pop(sources, 10, WORKER, {"record": 1, "other": 2})
    assert ids(again, "record") == ids(first, "record") and ids(again, "other") == ids(first, "other")[:2]
    none = d.pop(sources, 10, WORKER, {"record": 0, "other": 0})
    assert none == {}
    everything = d.pop(sources, 100, WORKER)  # no limits: what is in flight and the rest of the queues
    assert sorted(ids(everything, "record")) == record and sorted(ids(everything, "other")) == other
    d.close()
