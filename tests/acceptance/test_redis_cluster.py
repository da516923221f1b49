"""Redis Cluster (``MEEPO["REDIS_CLUSTER"]``, redis-py's ``RedisCluster``): jobs of three tasks whose keys sit on
three different masters flow through worker subprocesses while one task's slot is migrated to another master
key by key and another task's master is killed with SIGKILL and replaced by its replica. Every job runs exactly
once; none is lost.

The topology (3 masters, 3 replicas) is started by the test on free ports and stopped by PID. The workers run on
the Redis dispatcher alone (no failover to the table), so every job reaches them through the Cluster — or through
their sweepers, which re-dispatch what the promoted replica never received (replication is asynchronous).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.test import override_settings

from django_meepo import Job
from testproject.models import Run
from tests.support.cluster import Cluster, slot_of
from tests.support.redis_only import REDIS_ONLY_BANNER
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
TASKS = ("record", "other", "zombie_done")


@pytest.fixture
def cluster(key_prefix: str) -> Iterator[tuple[Cluster, str]]:
    if connection.vendor != "mysql":
        pytest.skip("a drill of Redis, not of the database: it runs once, with the MariaDB suite")
    topology = Cluster().start()
    try:
        prefix = next(p for p in (f"{key_prefix}-{i}" for i in range(1000))
                      if len({topology.owner(slot_of(p, t)).port for t in TASKS}) == len(TASKS))
        with override_settings(MEEPO={**settings.MEEPO, "KEY_PREFIX": prefix, "REDIS_CLUSTER": topology.nodes}):
            yield topology, prefix
    finally:
        topology.stop()


def finished(ids: list[int]) -> bool:
    return Job.objects.filter(id__in=ids, status="done").count() == len(ids)


def push_round(i: int) -> list[int]:
    return [j.id for t in TASKS for j in Job.objects.push_many(t, json=[{"sleep": 0.01}] * 3)] + \
        [Job.objects.push("record", json={}, priority=(i % 3 - 1) * 40).id]


def test_a_slot_migrated_and_a_master_killed_while_jobs_flow_lose_nothing(cluster, workers) -> None:  # type: ignore[no-untyped-def]
    topology, prefix = cluster
    env = {"MEEPO_REDIS_CLUSTER": ",".join(topology.nodes)}
    started = [workers.consume(*TASKS, redis_only=True, **env) for _ in range(2)]
    before = [j.id for t in TASKS for j in Job.objects.push_many(t, json=[{} for _ in range(30)])]
    wait_until(lambda: finished(before), timeout=60, message="jobs through the Cluster before any fault")
    assert all(REDIS_ONLY_BANNER in w.output() for w in started)

    record_slot = slot_of(prefix, "record")
    source = topology.owner(record_slot)
    target = topology.owner(slot_of(prefix, "zombie_done"))
    migrated: list[int] = []
    mover = threading.Thread(target=lambda: migrated.append(topology.migrate_slot(record_slot, target, pause=0.2)))
    during: list[int] = []
    for i in range(40):  # pushes go on while the slot moves and, later, while a master dies
        during += push_round(i)
        if i == 2:
            mover.start()
        if i == 20:
            mover.join(timeout=60)
            assert migrated and migrated[0] > 0, "the slot held keys of the record task when it moved"
            killed = topology.owner(slot_of(prefix, "other"))
            promoted = topology.fail_over(killed)  # SIGKILL; waits for the replica to take over
        time.sleep(0.1)
    assert topology.owner(record_slot) is target and target is not source
    assert topology.owner(slot_of(prefix, "other")) is promoted
    after = [j.id for t in TASKS for j in Job.objects.push_many(t, json=[{} for _ in range(20)])]
    ids = before + during + after
    wait_until(lambda: finished(ids), timeout=120, message="every job, after the migration and the failover")
    runs = dict(Run.objects.filter(job_id__in=ids).values_list("job_id").annotate(n=Count("id")).order_by())
    assert runs == {i: 1 for i in ids}, {i: n for i, n in runs.items() if n != 1}
    assert not Job.objects.filter(id__in=ids, rescues__gt=0).exists()
    assert set(Run.objects.filter(job_id__in=ids).values_list("task", flat=True)) == set(TASKS)
    assert all(w.process is not None and w.process.poll() is None for w in started), started[0].output()
