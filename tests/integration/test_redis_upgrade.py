"""An upgrade from the untagged key layout (``P:T:…``, before the hash tags ``{P:T}:…``): what the old keys still
hold — queued entries with their records, a dead old worker's in-flight list — is moved into the tagged keys by
the sweeper and claimed exactly once; an old worker still alive keeps its in-flight list. Against the real Redis.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from django_meepo import Job, outbox
from django_meepo.dispatch import new_dispatcher, redis_dispatcher
from django_meepo.dispatch import redis as rd
from django_meepo.dispatch import redis_keys as keys
from django_meepo.registry import get_task
from django_meepo.sweeper import Sweeper, source_of
from tests.support.fetching import fetch_claimed

pytestmark = pytest.mark.django_db(transaction=True)
TASK = "record"
DB = "default"


def untag(redis, prefix: str) -> None:  # type: ignore[no-untyped-def]
    """Rename every tagged key of TASK to its untagged name: what a version before the hash tags left."""
    for key in redis.scan_iter(match=f"{{{prefix}:{TASK}}}:*"):
        name = key.decode()
        redis.rename(name, name.replace(f"{{{prefix}:{TASK}}}", f"{prefix}:{TASK}", 1))


def test_the_untagged_layout_is_moved_and_every_job_claimed_once(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    queued = [Job.objects.push(TASK, json={}, priority=p).id for p in (60, 0, 0, -20)]
    popped_by_dead = Job.objects.push(TASK, json={}).id
    popped_by_alive = Job.objects.push(TASK, json={}).id
    outbox.flush()
    d = redis_dispatcher()
    source = source_of(get_task(TASK))
    # Two old workers popped one entry each (old in-flight lists), one of them still refreshes its global alive key.
    for worker, job_id in (("old-dead", popped_by_dead), ("old-alive", popped_by_alive)):
        redis.lrem(rd.queue_keys(key_prefix, TASK)[rd.DEFAULT], 1, f"{job_id}:1")
        redis.rpush(rd.inflight_key(key_prefix, TASK, worker), f"{job_id}:1")
        redis.sadd(rd.inflight_set_key(key_prefix, TASK), worker)
    redis.set(rd.sequence_key(key_prefix, TASK), 7)
    untag(redis, key_prefix)
    redis.set(keys.untagged_alive_key(key_prefix, "old-alive"), b"1", px=60_000)
    assert not redis.exists(*rd.queue_keys(key_prefix, TASK), rd.dispatched_key(key_prefix, TASK))
    assert d.length(TASK, key_prefix) == 4, "the untagged queues are counted until moved"
    assert fetch_claimed(d, [source], 10, worker="new", using=DB) == [], "nothing in the tagged keys yet"

    report = Sweeper([get_task(TASK)], dispatcher=new_dispatcher(), using=DB, holder="up").tick(now=timezone.now())
    assert report.recovered == 1, "the dead old worker's entry is given back"
    assert report.redispatched == 0, "every moved entry took its record along: nothing is dispatched twice"
    assert not redis.exists(*keys.untagged_queue_keys(key_prefix, TASK), keys.untagged_keys(key_prefix, TASK)["seq"])
    assert int(redis.get(rd.sequence_key(key_prefix, TASK))) >= 7, "later entries sort after the moved ones"
    assert redis.lrange(keys.untagged_inflight_key(key_prefix, TASK, "old-alive"), 0, -1) == \
        [f"{popped_by_alive}:1".encode()], "an old worker still alive keeps what it popped"
    claimed = [c.id for c in fetch_claimed(d, [source], 10, worker="new", using=DB)]
    assert claimed == [popped_by_dead, queued[0], queued[1], queued[2], queued[3]], \
        "the dead worker's entry first, then priority order, first in first out"
    assert fetch_claimed(d, [source], 10, worker="new", using=DB) == []
    assert redis.hgetall(rd.dispatched_key(key_prefix, TASK)) == {}, "acknowledged: no record left"
    assert redis.hget(keys.untagged_keys(key_prefix, TASK)["dispatched"], str(popped_by_alive)) == b"1", \
        "the alive old worker's record stays where it will acknowledge it"
    d.close()


def test_what_the_upgrade_does_not_move_the_sweeper_finds_in_the_table(redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # Were an old entry lost in the move (or its record with it), the job is a due todo row the tagged record
    # lacks: the sweeper's first (full) scan dispatches it again.
    ids = [j.id for j in Job.objects.push_many(TASK, json=[{}, {}, {}])]
    outbox.flush()
    redis.delete(rd.queue_keys(key_prefix, TASK)[rd.DEFAULT], rd.dispatched_key(key_prefix, TASK))
    report = Sweeper([get_task(TASK)], dispatcher=new_dispatcher(), using=DB, holder="up").tick(now=timezone.now())
    assert report.full_scan and report.redispatched == 3
    d = new_dispatcher()
    assert sorted(c.id for c in fetch_claimed(d, [source_of(get_task(TASK))], 10, worker="w", using=DB)) == ids
    d.close()
