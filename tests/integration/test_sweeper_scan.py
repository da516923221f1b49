"""The sweeper's paged scan for lost due jobs, against the real database and Redis.

A scan walks the due ``todo`` rows in (due_at, id) order, at most ``SCAN_PAGES_PER_TICK`` pages of
``SWEEP_LIMIT`` rows per tick, and goes on at the next tick from where it stopped; a scan that reached the end
is followed, at the next period, by a new one from the beginning.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from django_meepo import Job
from django_meepo.clock import db_now
from django_meepo.dispatch import new_dispatcher
from django_meepo.dispatch.redis import DEFAULT, dispatched_key, queue_keys, queued_entries
from django_meepo.registry import get_task
from django_meepo.sweeper import SCAN_PAGES_PER_TICK, Sweeper

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"
TASK = "record"
LIMIT = 4
PER_TICK = SCAN_PAGES_PER_TICK * LIMIT
TOTAL = 2 * PER_TICK + 3  # two full ticks, then a short last page that ends the scan


def queued(redis, prefix: str) -> list[bytes]:  # type: ignore[no-untyped-def]
    return queued_entries(redis, prefix, TASK)


def entry(job_id: int) -> bytes:
    return f"{job_id}:1".encode()


def lost_backlog(redis, prefix: str) -> list[int]:  # type: ignore[no-untyped-def]
    """TOTAL due todo jobs that Redis does not hold, their due times out of id order and with ties; their ids in
    (due_at, id) order, the order the scan must walk them in."""
    jobs = Job.objects.push_many(TASK, [b"{}"] * TOTAL)
    # What Redis lost: the queues and the record (the epoch key stays, so later ticks are no full scans).
    assert redis.delete(*queue_keys(prefix, TASK), dispatched_key(prefix, TASK)) >= 1
    base = db_now(DB) - timedelta(minutes=5)
    due = {}
    for i, job in enumerate(jobs):
        due[job.id] = base + timedelta(seconds=(i * 3) % 7)  # 7 distinct due times, 6 or 7 rows each
        # updated_at == due_at: neither the newly-due scan (due_at > updated_at) nor the grace picks them.
        Job.objects.filter(id=job.id).update(due_at=due[job.id], updated_at=due[job.id])
    order = sorted(due, key=lambda i: (due[i], i))
    assert order != sorted(due), "the (due_at, id) order differs from the id order"
    assert due[order[PER_TICK - 1]] == due[order[PER_TICK]], \
        "a tick ends inside a run of equal due times, so the keyset must go on by id within it"
    return order


def test_a_scan_covers_a_bounded_number_of_pages_per_tick_and_goes_on_where_it_stopped(redis,
                                                                                      key_prefix) -> None:  # type: ignore[no-untyped-def]
    meepo: dict[str, Any] = dict(settings.MEEPO)
    meepo["TASKS"] = {**meepo["TASKS"], TASK: {"SWEEP_LIMIT": LIMIT}}
    with override_settings(MEEPO=meepo):
        assert get_task(TASK).options.sweep_limit == LIMIT
        assert SCAN_PAGES_PER_TICK > 1, "a tick covers several pages"
        order = lost_backlog(redis, key_prefix)
        s = Sweeper([get_task(TASK)], dispatcher=new_dispatcher(), using=DB, holder="scan-sweeper")
        mono = time.monotonic()

        def tick(n: int):  # type: ignore[no-untyped-def]
            # Each tick is a period tick (10 s apart, SWEEP_PERIOD 1 s): a period does not restart a scan in
            # progress.
            return s.tick(monotonic=mono + 10 * n)

        first = tick(1)
        assert first.full_scan, "the first tick of a sweeper scans without the grace"
        assert first.redispatched == PER_TICK
        assert queued(redis, key_prefix) == [entry(i) for i in order[:PER_TICK]], \
            "the first tick dispatched the first rows in (due_at, id) order, in that order"

        second = tick(2)
        assert not second.full_scan
        assert second.redispatched == PER_TICK, "the second tick went on where the first stopped"
        assert queued(redis, key_prefix) == [entry(i) for i in order[:2 * PER_TICK]]

        third = tick(3)
        assert third.redispatched == TOTAL - 2 * PER_TICK, "the last tick dispatched the rest and ended the scan"
        held = queued(redis, key_prefix)
        assert Counter(held) == Counter(entry(i) for i in order), "every job is in Redis exactly once"
        assert {int(k) for k in redis.hkeys(dispatched_key(key_prefix, TASK))} == set(order)

        # The scan reached the end: the next period starts a new one from the beginning. Redis loses the first
        # two rows of the order again, and only a scan from the start finds them at once.
        for job_id in order[:2]:
            assert redis.lrem(queue_keys(key_prefix, TASK)[DEFAULT], 0, entry(job_id)) == 1
            assert redis.hdel(dispatched_key(key_prefix, TASK), str(job_id)) == 1
        fourth = tick(4)
        assert not fourth.full_scan
        assert fourth.redispatched == 2, "a new scan started from the beginning and found what Redis lost"
        after = queued(redis, key_prefix)
        assert Counter(after) == Counter(entry(i) for i in order), "still every job once, none pushed twice"
        assert after[-2:] == [entry(i) for i in order[:2]]
