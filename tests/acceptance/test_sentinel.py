"""Redis Sentinel (django-redis's SentinelClient): the master is killed while jobs flow; the sentinels promote
the replica, workers and producers follow it, and nothing is lost or run twice.

The topology (a master, a replica, three sentinels) is started by the test on free ports and stopped by PID.
The workers run on the Redis dispatcher alone (no failover to the table), so every job pushed after the kill
reaches them through the promoted replica — or through their sweepers, which re-dispatch what the replica
never received (Sentinel's replication is asynchronous: acknowledged writes can be lost at a failover).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.test import override_settings

from django_meepo import Job
from testproject.models import Run
from tests.support.redis_only import REDIS_ONLY_BANNER
from tests.support.sentinel import Sentinels
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def sentinels(key_prefix: str) -> Iterator[Sentinels]:
    if connection.vendor != "mysql":
        pytest.skip("a drill of Redis, not of the database: it runs once, with the MariaDB suite")
    topology = Sentinels().start()
    meepo = {**settings.CACHES["meepo"], "LOCATION": topology.location, "OPTIONS": topology.settings_options()}
    try:
        with override_settings(CACHES={**settings.CACHES, "meepo": meepo}):
            yield topology
    finally:
        topology.stop()


def finished(ids: list[int]) -> bool:
    return Job.objects.filter(id__in=ids, status="done").count() == len(ids)


def test_the_master_killed_while_jobs_flow_loses_nothing(sentinels: Sentinels, workers) -> None:  # type: ignore[no-untyped-def]
    env = {"MEEPO_REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for p in sentinels.ports)}
    started = [workers.consume("record", redis_only=True, **env) for _ in range(2)]
    before = [j.id for j in Job.objects.push_many("record", json=[{"sleep": 0.01} for _ in range(100)])]
    wait_until(lambda: finished(before), timeout=60, message="jobs through the first master")
    assert all(REDIS_ONLY_BANNER in w.output() for w in started)
    first_master = sentinels.master
    assert first_master is not None and sentinels.replica is not None
    during: list[int] = []
    for i in range(40):  # pushes go on while the master dies and the sentinels elect the replica
        during += [j.id for j in Job.objects.push_many("record", json=[{"sleep": 0.01}] * 5)]
        if i == 5:
            first_master.stop()  # kill -9: whatever it had not yet sent to the replica is gone
        time.sleep(0.25)
    wait_until(lambda: sentinels.master_port() == sentinels.replica.port, timeout=60,
               message="the sentinels to promote the replica")
    after = [j.id for j in Job.objects.push_many("record", json=[{} for _ in range(50)])]
    ids = before + during + after
    wait_until(lambda: finished(ids), timeout=120, message="every job, through the promoted replica")
    runs = dict(Run.objects.filter(job_id__in=ids).values_list("job_id").annotate(n=Count("id")).order_by())
    assert runs == {i: 1 for i in ids}, {i: n for i, n in runs.items() if n != 1}
    assert not Job.objects.filter(id__in=ids, rescues__gt=0).exists()
    assert sentinels.replica.client().info("replication")["role"] == "master"
    assert all(w.process is not None and w.process.poll() is None for w in started), started[0].output()
    log = started[0].output()
    assert "dispatcher unavailable" in log and "back to normal" in log, "the worker lived through the failover: " + log
