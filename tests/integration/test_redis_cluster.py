"""The Redis dispatcher on a Redis Cluster of the test's own (3 masters, 3 replicas on free ports):
``MEEPO["REDIS_CLUSTER"]`` makes it use redis-py's ``RedisCluster``; every key of a task is under its hash tag,
so each script touches one slot, and a pop over tasks on several masters makes one call per slot.

On the code of before these fail: its pop script took every task's keys and a global alive key in one call
(CROSSSLOT on a Cluster), and ``MEEPO["REDIS_CLUSTER"]`` did not exist.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import override_settings

from django_meepo import Job, outbox
from django_meepo.dispatch import redis as rd
from django_meepo.dispatch import redis_client, redis_dispatcher
from django_meepo.dispatch.redis import RedisDispatcher
from django_meepo.dispatch.redis_keys import rate_key
from django_meepo.registry import get_task
from django_meepo.sweeper import Sweeper, source_of
from tests.support.cluster import Cluster, slot_of
from tests.support.fetching import fetch_claimed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
TASKS = ("record", "other", "zombie_done")
DB = "default"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    topology = Cluster().start()
    try:
        yield topology
    finally:
        topology.stop()


def spread_prefix(cluster: Cluster, base: str) -> str:
    """A key prefix under which ``TASKS`` fall on three different masters (the slot map is fixed once formed)."""
    for i in range(1000):
        prefix = f"{base}-{i}"
        if len({cluster.owner(slot_of(prefix, t)).port for t in TASKS}) == len(TASKS):
            return prefix
    raise AssertionError("no prefix spreads the tasks over the masters")


@pytest.fixture
def on_cluster(cluster: Cluster, key_prefix: str) -> Iterator[str]:
    prefix = spread_prefix(cluster, key_prefix)
    with override_settings(MEEPO={**settings.MEEPO, "KEY_PREFIX": prefix, "REDIS_CLUSTER": cluster.nodes}):
        yield prefix


def test_the_client_is_a_cluster_client_and_a_pop_spans_three_masters(on_cluster, cluster) -> None:  # type: ignore[no-untyped-def]
    d = redis_dispatcher()
    assert d.cluster and type(redis_client()).__name__ == "RedisCluster"
    sources = [source_of(get_task(t)) for t in TASKS]
    assert len(rd.slot_groups(sources, True)) == 3 and len(rd.slot_groups(sources, False)) == 1
    jobs = {t: [j.id for j in Job.objects.push_many(t, json=[{} for _ in range(5)])] for t in TASKS}
    jobs["record"] += [Job.objects.push("record", json={}, priority=p).id for p in (50, -50)]
    outbox.flush()
    assert {t: d.length(t, on_cluster) for t in TASKS} == {"record": 7, "other": 5, "zombie_done": 5}
    claimed = fetch_claimed(d, sources, 100, worker="cluster-worker", using=DB)
    assert sorted(c.id for c in claimed) == sorted(i for ids in jobs.values() for i in ids)
    client = redis_client()
    for t in TASKS:  # acknowledged: nothing in flight, no record left, the alive key set by the pop
        assert client.llen(rd.inflight_key(on_cluster, t, "cluster-worker")) == 0
        assert client.hlen(rd.dispatched_key(on_cluster, t)) == 0
        assert client.exists(rd.alive_key(on_cluster, t, "cluster-worker")) == 1
    d.heartbeat("cluster-worker")
    d.worker_stopped("cluster-worker")
    assert not any(client.exists(rd.alive_key(on_cluster, t, "cluster-worker")) for t in TASKS)
    d.close()


def test_a_dead_workers_entries_come_back_and_a_node_that_lost_its_data_is_rescanned(on_cluster, cluster) -> None:  # type: ignore[no-untyped-def]
    d = redis_dispatcher()
    sources = [source_of(get_task(t)) for t in TASKS]
    ids = [j.id for t in TASKS for j in Job.objects.push_many(t, json=[{}, {}])]
    outbox.flush()
    popped = d.pop(sources, 100, "doomed")
    assert sum(map(len, popped.values())) == len(ids)
    client = redis_client()
    for t in TASKS:
        client.delete(rd.alive_key(on_cluster, t, "doomed"))  # it died: its alive keys expired
    sweeper = Sweeper([get_task(t) for t in TASKS], dispatcher=redis_dispatcher(), using=DB, holder="cluster-sw")
    report = sweeper.tick()
    assert report.recovered == len(ids) and report.full_scan and report.redispatched == 0
    assert sorted(c.id for c in fetch_claimed(d, sources, 100, worker="w", using=DB)) == sorted(ids)
    assert not sweeper.tick().full_scan
    # One master loses what it held (flushed, as a restart without data would): its tasks' epochs are gone.
    owner = cluster.owner(slot_of(on_cluster, "other"))
    owner.client().flushall()
    assert sweeper.tick().full_scan
    d.close()


def test_the_rate_limit_buckets_carry_the_tasks_hash_tag(on_cluster) -> None:  # type: ignore[no-untyped-def]
    from django_meepo.ratelimit import Limiter, TaskRates

    limiter = Limiter(redis_client())
    grant = limiter.take_redis(TaskRates.of("record", on_cluster, "2/s", "1/s"), ["a", "b", "a", None])
    assert grant is not None and grant.granted == [True, True, False, False]
    client = redis_client()
    assert client.exists(rate_key(on_cluster, "record"), rate_key(on_cluster, "record") + ":a") == 2


def test_a_standalone_dispatcher_is_unchanged(key_prefix) -> None:  # type: ignore[no-untyped-def]
    d = redis_dispatcher()
    assert type(d) is RedisDispatcher and not d.cluster
    d.close()


def test_the_eviction_check_asks_every_master(on_cluster, cluster) -> None:  # type: ignore[no-untyped-def]
    from django_meepo.checks import check_redis

    assert check_redis() == []
    master = cluster.owner(slot_of(on_cluster, "other"))
    master.client().config_set("maxmemory-policy", "allkeys-lru")
    try:
        warnings = check_redis()
        assert [w.id for w in warnings] == ["meepo.W002"] and "allkeys-lru" in warnings[0].msg
    finally:
        master.client().config_set("maxmemory-policy", "noeviction")
