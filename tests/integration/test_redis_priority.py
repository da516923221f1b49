"""The Redis queue layout for exact priority, against the real Redis (and the database where jobs are claimed).

Priority 0 stays in one list (the hot path: one RPUSH, one LPOP); above 0 in the ``q:hi`` zset, below in
``q:lo``, scored ``(100 - priority) * 2**40 + sequence``. Also: a dead worker's entries go back in front, and the
five band lists of before are moved into the new queues by the sweeper (``upgrade``), never lost.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.utils import timezone

from django_meepo import Job
from django_meepo import statemachine as sm
from django_meepo.dispatch import new_dispatcher, redis_dispatcher
from django_meepo.dispatch import redis as rd
from django_meepo.registry import get_task
from django_meepo.sweeper import Sweeper, source_of
from tests.support.fetching import fetch_claimed

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"
TASK = "record"
WORKER = "prio-worker"


@pytest.fixture
def dispatcher() -> Iterator[rd.RedisDispatcher]:
    d = redis_dispatcher()
    yield d
    d.close()


def item(job_id: int, priority: int, cid: int = 1) -> sm.Dispatchable:
    return sm.Dispatchable(TASK, job_id, cid, priority)


def pop_all(d: rd.RedisDispatcher, worker: str = WORKER) -> list[bytes]:
    """Entries popped one call at a time (one entry each), acknowledged at once: the order a serial worker sees."""
    source = source_of(get_task(TASK))
    out: list[bytes] = []
    while popped := d.pop([source], 1, worker).get(source):
        out += popped
        d.ack(source, popped, worker)
    return out


def test_seven_close_priorities_pop_highest_first(dispatcher, key_prefix) -> None:  # type: ignore[no-untyped-def]
    priorities = [10, 20, 30, 40, 49, 50, 100]
    for i, p in enumerate(priorities, start=1):
        dispatcher.dispatch([item(i, p)])
    order = [int(e.split(b":")[0]) for e in pop_all(dispatcher)]
    assert [priorities[i - 1] for i in order] == [100, 50, 49, 40, 30, 20, 10]


def test_one_priority_is_first_in_first_out_across_and_within_batches(dispatcher, key_prefix) -> None:  # type: ignore[no-untyped-def]
    dispatcher.dispatch([item(i, 5) for i in range(1, 6)])
    dispatcher.dispatch([item(i, 5) for i in range(6, 9)])
    dispatcher.dispatch([item(9, -5)])
    dispatcher.dispatch([item(i, -5) for i in range(10, 13)])
    assert pop_all(dispatcher) == [f"{i}:1".encode() for i in range(1, 13)]


def test_one_batch_of_mixed_priorities_is_queued_in_priority_order(dispatcher, key_prefix, redis) -> None:  # type: ignore[no-untyped-def]
    batch = [(1, 0), (2, -100), (3, 100), (4, 0), (5, 1), (6, -1), (7, 100), (8, 0), (9, 1), (10, -100)]
    dispatcher.dispatch([item(i, p) for i, p in batch])  # one call, four (task, queue) groups in a pipeline
    expected = [f"{i}:1".encode() for i, _ in sorted(batch, key=lambda b: (-b[1], b[0]))]
    assert rd.queued_entries(redis, key_prefix, TASK) == expected
    assert dispatcher.length(TASK, key_prefix) == len(batch)
    assert pop_all(dispatcher) == expected


def test_the_default_priority_stays_in_one_list_and_needs_no_sequence(dispatcher, key_prefix, redis) -> None:  # type: ignore[no-untyped-def]
    dispatcher.dispatch([item(i, 0) for i in range(1, 4)])
    hi, default, lo = rd.queue_keys(key_prefix, TASK)
    assert redis.type(default) == b"list" and redis.lrange(default, 0, -1) == [b"1:1", b"2:1", b"3:1"]
    assert not redis.exists(hi, lo, rd.sequence_key(key_prefix, TASK))


def test_scores_are_exact_integers_at_the_ends_of_the_range(dispatcher, key_prefix, redis) -> None:  # type: ignore[no-untyped-def]
    # 15-digit scores: a score formatted with fewer significant digits (stock Lua's %.14g) would lose the sequence.
    redis.set(rd.sequence_key(key_prefix, TASK), 2**40 - 3)
    dispatcher.dispatch([item(1, -100), item(2, -100), item(3, 1)])
    hi, _, lo = rd.queue_keys(key_prefix, TASK)
    assert redis.zscore(lo, "1:1") == 200 * 2**40 + 2**40 - 2
    assert redis.zscore(lo, "2:1") == 200 * 2**40 + 2**40 - 1
    assert redis.zscore(hi, "3:1") == 99 * 2**40  # the sequence wrapped (2**40 mod 2**40): FIFO breaks, never priority
    assert max(redis.zscore(lo, "2:1"), 201 * 2**40) < 2**53


def test_an_entry_dispatched_twice_keeps_its_place(dispatcher, key_prefix) -> None:  # type: ignore[no-untyped-def]
    dispatcher.dispatch([item(1, 5), item(2, 5)])
    dispatcher.dispatch([item(1, 5)])  # the same id and cid again (a duplicate dispatch)
    assert pop_all(dispatcher) == [b"1:1", b"2:1"]


def test_a_dead_workers_entries_go_back_in_front_of_every_priority(dispatcher, key_prefix, redis) -> None:  # type: ignore[no-untyped-def]
    source = source_of(get_task(TASK))
    dispatcher.dispatch([item(1, 0), item(2, -3), item(3, 0)])
    taken = dispatcher.pop([source], 3, "dead-worker")[source]
    assert taken == [b"1:1", b"3:1", b"2:1"]
    redis.delete(rd.alive_key(key_prefix, TASK, "dead-worker"))  # it died: its alive key expired
    dispatcher.dispatch([item(4, 100), item(5, 0)])
    assert dispatcher.recover([source]) == 3
    assert pop_all(dispatcher) == [b"1:1", b"3:1", b"2:1", b"4:1", b"5:1"]


def old_layout(redis, prefix: str, bands: dict[int, list[str]]) -> None:  # type: ignore[no-untyped-def]
    """What the five-band layout left in Redis: entries in ``P:T:q:<band>`` lists, each recorded (untagged)."""
    for band, entries in bands.items():
        redis.rpush(f"{prefix}:{TASK}:q:{band}", *entries)
        redis.hset(f"{prefix}:{TASK}:dispatched", mapping={e.split(":")[0]: e.split(":")[1] for e in entries})


def test_the_old_band_lists_are_moved_each_at_its_place(dispatcher, key_prefix, redis, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(rd, "UPGRADE_BATCH", 2)  # several calls of the script, each atomic
    old_layout(redis, key_prefix, {0: ["1:1", "2:1", "3:1"], 1: ["4:1"], 2: ["5:1"], 3: ["6:1", "7:1"], 4: ["8:1"]})
    new = [(20, 100), (21, 49), (22, 0), (23, -1), (24, -50), (25, -100), (26, 50)]
    dispatcher.dispatch([item(i, p) for i, p in new])
    source = source_of(get_task(TASK))
    assert dispatcher.length(TASK, key_prefix) == 8 + len(new), "the old lists are counted until moved"
    assert dispatcher.recover([source]) == 0, "no dead worker: the move is not counted as recovered"
    assert not redis.exists(*rd.legacy_keys(key_prefix, TASK))
    assert redis.lrange(rd.queue_keys(key_prefix, TASK)[rd.DEFAULT], 0, -1) == [b"5:1", b"22:1"], \
        "the old priority-0 list went in front of the new default list"
    assert not redis.exists(f"{key_prefix}:{TASK}:q:2", f"{key_prefix}:{TASK}:dispatched")
    assert redis.hgetall(rd.dispatched_key(key_prefix, TASK)) == {str(i).encode(): b"1" for i in [*range(1, 9),
                                                                                                   *range(20, 27)]}
    # Each old band at the top priority of its band, ahead of what was dispatched at that priority since.
    expected = [1, 2, 3, 20, 26, 4, 21, 5, 22, 6, 7, 23, 8, 24, 25]
    assert pop_all(dispatcher) == [f"{i}:1".encode() for i in expected]
    assert dispatcher.upgrade(source) == 0, "nothing left to move"


def test_the_sweeper_moves_old_band_entries_so_they_are_claimed_not_lost(key_prefix, redis) -> None:  # type: ignore[no-untyped-def]
    jobs = [Job.objects.push(TASK, json={}, priority=p) for p in (80, 0, -60)]
    hi, default, lo = rd.queue_keys(key_prefix, TASK)
    redis.delete(hi, default, lo)  # as if pushed before the upgrade: entries in band lists 0, 2 and 4
    redis.rpush(f"{key_prefix}:{TASK}:q:0", f"{jobs[0].id}:1")
    redis.rpush(f"{key_prefix}:{TASK}:q:2", f"{jobs[1].id}:1")
    redis.rpush(f"{key_prefix}:{TASK}:q:4", f"{jobs[2].id}:1")
    d = new_dispatcher()
    source = source_of(get_task(TASK))
    try:
        # Recorded as dispatched, so the sweeper's scan would never dispatch them again: only the move saves them.
        assert d.missing(TASK, key_prefix, [sm.Ref(j.id, 1) for j in jobs]) == []
        assert fetch_claimed(d, [source], 10, worker=WORKER, using=DB) == [], "nothing in today's keys yet"
        Sweeper([get_task(TASK)], dispatcher=d, using=DB, holder="prio-sweeper").tick(now=timezone.now())
        claimed = fetch_claimed(d, [source], 10, worker=WORKER, using=DB)
        assert [(c.id, c.priority) for c in claimed] == [(jobs[0].id, 80), (jobs[1].id, 0), (jobs[2].id, -60)]
    finally:
        d.close()


def test_one_sweep_moves_a_bounded_number_and_the_next_goes_on(dispatcher, key_prefix, redis, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(rd, "UPGRADE_BATCH", 1)
    monkeypatch.setattr(rd, "UPGRADE_CALLS", 2)
    old_layout(redis, key_prefix, {3: [f"{i}:1" for i in range(1, 6)]})
    source = source_of(get_task(TASK))
    assert [dispatcher.upgrade(source) for _ in range(4)] == [2, 2, 1, 0]
    assert pop_all(dispatcher) == [f"{i}:1".encode() for i in range(1, 6)]
