"""A failed acknowledgement on the Redis transport, against the real database and Redis.

``RedisDispatcher.fetch`` claims what it took, then acknowledges exactly those entries. An ack that fails
leaves them in the worker's in-flight list; the next take hands them out again (pass 0 of the pop script),
their claims fail because the cid moved on, and they are acknowledged then. No job is delivered twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from django_meepo import Job, outbox
from django_meepo.dispatch import redis_dispatcher
from django_meepo.dispatch.redis import RedisDispatcher, dispatched_key, inflight_key, inflight_set_key, queued_entries
from django_meepo.registry import get_task
from django_meepo.sweeper import source_of
from testproject.models import Run
from tests.support.fetching import fetch_claimed
from tests.support.inprocess import running_worker
from tests.support.services import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"
TASK = "record"
WORKER = "ack-worker"


class FailingAcks:
    """Makes the first ``times`` acks of the dispatchers it wraps fail before they reach Redis (as a dropped
    connection would), and counts every ack tried."""

    def __init__(self, times: int = 1) -> None:
        self.left = times
        self.tried = 0
        self.failed = 0

    def wrap(self, dispatcher: RedisDispatcher) -> RedisDispatcher:
        real: Callable[..., Any] = dispatcher._ack

        def ack(*args: Any, **kwargs: Any) -> Any:
            self.tried += 1
            if self.left > 0:
                self.left -= 1
                self.failed += 1
                raise RedisTimeoutError("injected: the ack never reached Redis")
            return real(*args, **kwargs)

        dispatcher._ack = ack  # type: ignore[assignment]
        return dispatcher

    def factory(self) -> Callable[[], RedisDispatcher]:
        return lambda: self.wrap(redis_dispatcher())


def entries(jobs: list[Job], cid: int = 1) -> list[bytes]:
    return [f"{j.id}:{cid}".encode() for j in jobs]


def test_a_failed_ack_leaves_the_entries_in_flight_and_the_next_fetch_acknowledges_them(redis,
                                                                                        key_prefix) -> None:  # type: ignore[no-untyped-def]
    source = source_of(get_task(TASK))
    inflight = inflight_key(key_prefix, TASK, WORKER)
    record = dispatched_key(key_prefix, TASK)
    jobs = Job.objects.push_many(TASK, json=[{"n": n} for n in range(3)])
    outbox.flush()
    acks = FailingAcks(times=1)
    d = acks.wrap(redis_dispatcher())

    first = fetch_claimed(d, [source], 10, worker=WORKER, using=DB)
    assert (acks.tried, acks.failed) == (1, 1), "the fetch tried its ack once, and it failed"
    assert sorted(j.id for j in first) == sorted(j.id for j in jobs), "the failed ack did not undo the claims"
    rows = Job.objects.filter(id__in=[j.id for j in jobs])
    assert {(r.status, r.cid, r.attempts, r.worker) for r in rows} == {("doing", 2, 1, WORKER)}
    assert redis.lrange(inflight, 0, -1) == entries(jobs), "the unacknowledged entries are still in flight"
    assert redis.sismember(inflight_set_key(key_prefix, TASK), WORKER)
    assert {int(k): v for k, v in redis.hgetall(record).items()} == {j.id: b"1" for j in jobs}, \
        "their records stay until they are acknowledged"
    assert queued_entries(redis, key_prefix, TASK) == []

    later = Job.objects.push(TASK, json={"n": 3})  # a fresh entry for the next take, behind the stale ones
    second = fetch_claimed(d, [source], 10, worker=WORKER, using=DB)
    assert acks.tried == 2 and acks.failed == 1
    assert [j.id for j in second] == [later.id], \
        "the entries handed out again failed their claims (the cid moved on): only the new job was delivered"
    assert redis.lrange(inflight, 0, -1) == [], "the next fetch acknowledged the stale entries and the new one"
    assert not redis.sismember(inflight_set_key(key_prefix, TASK), WORKER)
    assert redis.hlen(record) == 0, "every record left with its acknowledged entry"
    assert {(r.status, r.cid, r.attempts) for r in rows.all()} == {("doing", 2, 1)}, "claimed once, not again"
    delivered = [j.id for j in first + second]
    assert len(delivered) == len(set(delivered)) == 4, "no job was delivered twice"

    assert fetch_claimed(d, [source], 10, worker=WORKER, using=DB) == []
    assert acks.tried == 2, "nothing was taken, so nothing was acknowledged"


def test_a_worker_whose_ack_failed_runs_every_job_once(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    acks = FailingAcks(times=1)
    with running_worker(TASK, parallel=2, sweep=False, dispatcher_factory=acks.factory()) as worker:
        inflight = inflight_key(key_prefix, TASK, worker.id)
        jobs = Job.objects.push_many(TASK, json=[{"sleep": 0.2} for _ in range(4)])
        ids = [j.id for j in jobs]
        wait_until(lambda: Job.objects.filter(id__in=ids, status="done").count() == len(ids), timeout=60,
                   message="every job to run after the failed ack")
        assert acks.failed == 1 and acks.tried >= 2
        wait_until(lambda: redis.llen(inflight) == 0, timeout=30,
                   message="a later fetch to acknowledge the entries the failed ack left in flight")
    runs = list(Run.objects.filter(job_id__in=ids).values_list("job_id", "finished"))
    assert sorted(runs) == sorted((i, True) for i in ids), "each job ran exactly once"
    assert {r.attempts for r in Job.objects.filter(id__in=ids)} == {1}, "each job was claimed once"
    assert redis.hlen(dispatched_key(key_prefix, TASK)) == 0
