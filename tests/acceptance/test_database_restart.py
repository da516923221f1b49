"""The database crashes and comes back while jobs flow: a test-owned mariadbd is killed with SIGKILL (or a
test-owned PostgreSQL stopped with ``-m immediate``) and started again on its data directory. Workers, their
sweepers and a producer reconnect; no job is lost and none is pushed twice, and a job runs twice only when its
first run overlapped the outage (at-least-once).

The producer (``tests.support.producer``) pushes each job in its own transaction with an idempotency key and
retries it on any database error, as an application should: a COMMIT whose answer was lost may have committed,
and the key makes the retry return that job instead of pushing a second one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator

import pytest
from django.db import connection

from tests.support.mariadb import PrivateMariaDB
from tests.support.postgres import PrivatePostgres
from tests.support.services import wait_until
from tests.support.workers import MANAGE, ROOT

pytestmark = [pytest.mark.slow]

JOBS = 300
DATABASE = "meepo_restart"

PRODUCER = ["-m", "tests.support.producer"]


Server = PrivateMariaDB | PrivatePostgres


@pytest.fixture
def server() -> Iterator[Server]:
    # The server of the suite's own database kind, so that each drill runs once (with the MariaDB suite, and
    # with the PostgreSQL one); SQLite has no server to crash.
    kinds: dict[str, type[PrivateMariaDB] | type[PrivatePostgres]] = {
        "mysql": PrivateMariaDB, "postgresql": PrivatePostgres}
    if connection.vendor not in kinds:
        pytest.skip(f"{connection.vendor} has no server to crash")
    made = kinds[connection.vendor]().install().start()
    try:
        yield made
    finally:
        made.cleanup()


def env_for(server: Server) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": server.url(DATABASE), "MEEPO_DB_NAME": DATABASE,
                "MEEPO_KEY_PREFIX": f"restart-{uuid.uuid4().hex[:8]}", "DJANGO_SETTINGS_MODULE": "testproject.settings",
                "MEEPO_LOG_LEVEL": "INFO"})
    return env


def rows(server: Server, sql: str) -> list[tuple]:
    """The rows of ``sql`` on the server, or none while it is down."""
    try:
        return server.query(DATABASE, sql)
    except Exception:
        return []


def done(server: Server) -> int:
    return int((rows(server, "SELECT COUNT(*) FROM meepo_job WHERE status = 'done'") or [(0,)])[0][0])


def test_the_database_crashed_and_restarted_while_jobs_flow(server: Server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.create_database(DATABASE)
    env = env_for(server)
    subprocess.run([sys.executable, *MANAGE, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=180)
    logs = [open(tmp_path / f"worker-{i}.log", "wb") for i in range(2)]  # noqa: SIM115
    procs = [subprocess.Popen([sys.executable, *MANAGE, "meepo_consume", "record"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT) for log in logs]
    producer = subprocess.Popen([sys.executable, *PRODUCER, str(JOBS)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: done(server) >= JOBS // 4, timeout=120, message="a quarter of the jobs to run")
        outage_start = time.time()
        server.crash()
        time.sleep(3)
        server.start()
        outage_end = time.time()
        out, err = producer.communicate(timeout=240)
        assert producer.returncode == 0, err
        assert f"pushed {JOBS}" in out
        wait_until(lambda: done(server) == JOBS, timeout=180, message="every job to be done after the restart")
        assert all(p.poll() is None for p in procs), "the workers lived through the restart"
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=30)
        for log in logs:
            log.close()
        if producer.poll() is None:
            producer.kill()
    jobs = rows(server, "SELECT id, idempotency_key, status FROM meepo_job")
    assert len(jobs) == JOBS and {k for _, k, _ in jobs} == {f"p{i}" for i in range(JOBS)}, \
        "each push made exactly one job, the retried ones too"
    runs: dict[int, list[tuple]] = defaultdict(list)
    for job_id, cid, created, finished in rows(
            server, f"SELECT job_id, cid, {server.epoch('created_at')}, finished FROM testproject_run ORDER BY id"):
        runs[job_id].append((cid, float(created), finished))
    assert set(runs) == {j for j, _, _ in jobs}, "every job ran"
    unexplained = {j: r for j, r in runs.items()
                   if len(r) > 1 and not r[0][1] < outage_end + 10}  # a lease (3 s) and a sweep after it came back
    assert not unexplained, unexplained
    for job_id, job_runs in runs.items():
        cids = [c for c, _, _ in job_runs]
        assert cids == sorted(set(cids)), f"job {job_id}: the cid of its runs must strictly increase: {cids}"
    log_text = b"".join((tmp_path / f"worker-{i}.log").read_bytes() for i in range(2)).decode(errors="replace")
    assert "connection lost during" in log_text or "could not reach the database" in log_text, \
        "the workers met the outage: " + log_text[-4000:]
    assert outage_end - outage_start >= 3
