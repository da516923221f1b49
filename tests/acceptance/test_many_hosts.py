"""Workers on several hosts, one database, one Redis: each "host" is a network namespace of the test's own, with
its own address and host name, and a clock that runs ahead or behind. The database and Redis are the test's own
too, listening only on the test's bridge.

What must hold: every job runs exactly once; no lease expires although the hosts' clocks disagree by far more
than a lease (leases are on the database's clock); worker ids are unique and say which host they run on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from django.db import connection

from tests.support.hosts import Hosts, netns_permitted
from tests.support.mariadb import PrivateMariaDB
from tests.support.services import IN_CI, RedisServer, wait_until
from tests.support.workers import ROOT

pytestmark = [pytest.mark.slow]

DATABASE = "meepo_hosts"
JOBS = 400
SKEWS = (45.0, -45.0)  # the worker hosts' clocks: far more than a lease (3 s) apart
SKEWED = ["-m", "tests.support.skewed"]


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    if connection.vendor != "mysql":
        pytest.skip("runs once, with the MariaDB suite (its database is the test's own)")
    reason = netns_permitted()
    if reason:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    made = Hosts(len(SKEWS) + 1).create()
    try:
        yield made
    finally:
        made.remove()


def test_workers_on_two_hosts_with_skewed_clocks_run_every_job_once(hosts: Hosts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = PrivateMariaDB(host=hosts.server_address).install().start()
    redis = RedisServer(host=hosts.server_address).start()
    procs: list[subprocess.Popen] = []
    try:
        db.allow_root_from_anywhere()
        db.create_database(DATABASE)
        env = dict(os.environ, DATABASE_URL=db.url(DATABASE), MEEPO_DB_NAME=DATABASE, REDIS_URL=redis.url,
                   MEEPO_KEY_PREFIX=f"hosts-{uuid.uuid4().hex[:8]}", DJANGO_SETTINGS_MODULE="testproject.settings",
                   MEEPO_LOG_LEVEL="INFO")
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], cwd=ROOT, env=env, check=True,
                       timeout=180)
        logs = []
        for i, skew in enumerate(SKEWS):
            log = open(tmp_path / f"h{i}.log", "wb")  # noqa: SIM115 - closed below
            logs.append(log)
            procs.append(subprocess.Popen(hosts.command(i, [sys.executable, *SKEWED, "meepo_consume", "record"]),
                                          cwd=ROOT, env=dict(env, MEEPO_TEST_CLOCK_SKEW=str(skew)), stdout=log,
                                          stderr=subprocess.STDOUT))
        producer_host = len(SKEWS)
        producer = subprocess.run(hosts.command(producer_host, [sys.executable, "-m", "tests.support.producer",
                                                                str(JOBS)]),
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert producer.returncode == 0, producer.stderr
        assert f"pushed {JOBS} retries 0" in producer.stdout

        def done() -> bool:
            return db.query(DATABASE, "SELECT COUNT(*) FROM meepo_job WHERE status = 'done'")[0][0] == JOBS
        wait_until(done, timeout=180, message="every job to be done by the two hosts")
        workers = db.query(DATABASE, "SELECT id, hostname FROM meepo_worker")
        runs = db.query(DATABASE, "SELECT job_id, pid FROM testproject_run")
        rescued = db.query(DATABASE, "SELECT COUNT(*) FROM meepo_job WHERE rescues > 0")[0][0]
        assert all(p.poll() is None for p in procs), "both hosts' workers still run"
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=30)
        redis.cleanup()
        db.cleanup()
    log_text = "".join((tmp_path / f"h{i}.log").read_text(errors="replace") for i in range(len(SKEWS)))
    assert sorted(h for _, h in workers) == ["h0", "h1"], workers
    assert all(w.startswith(f"{h}:") for w, h in workers), workers
    per_job = Counter(j for j, _ in runs)
    assert len(per_job) == JOBS and set(per_job.values()) == {1}, \
        {j: n for j, n in per_job.items() if n != 1} or f"{len(per_job)} of {JOBS} jobs ran"
    assert len({pid for _, pid in runs}) == 2, "both hosts ran jobs"
    assert rescued == 0, "no lease expired, whatever the hosts' clocks say"
    assert log_text.count("this process's clock is shifted by") == 2, log_text[-3000:]
