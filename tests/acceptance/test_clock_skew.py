"""Issue 9, window 7: leases and due times do not depend on the hosts' clocks agreeing.

Real ``meepo_sweep``, ``meepo_push`` and ``meepo_consume`` processes, some started under
``tests.support.skewed`` (their wall clock shifted by ``MEEPO_TEST_CLOCK_SKEW``), against the real database and
Redis. Every time they write or compare comes from the database's clock, so the skew changes nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from django_meepo import Job
from django_meepo.models import Lease
from testproject.models import Run
from tests.support.services import wait_until
from tests.support.skewed import SKEW_BANNER
from tests.support.workers import WorkerPool, WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SKEWED = ["-m", "tests.support.skewed"]
SKEW = 60  # seconds; far more than any lease (3 s) or delay in these tests


@pytest.fixture(autouse=True)
def not_sqlite() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite is one file on one host: every process shares its clock (clock.py)")


def finished(job_id: int) -> bool:
    return Job.objects.filter(id=job_id, status__in=["done", "failed"]).exists()


def rescued(job_id: int) -> bool:
    return Job.objects.filter(id=job_id, rescues__gt=0).exists()


def push_from_a_skewed_host(workers: WorkerPool, skew: float, *args: str) -> int:
    """``meepo_push record …`` on a host whose clock is ``skew`` seconds off; the pushed job's id."""
    producer = workers.start("meepo_push", "record", *args, launcher=SKEWED, MEEPO_TEST_CLOCK_SKEW=str(skew))
    assert producer.wait(timeout=60) == 0, producer.output()
    assert f"{SKEW_BANNER} {skew:+g} s" in producer.output()
    match = re.search(r"^(\d+)$", producer.output(), re.MULTILINE)
    assert match, producer.output()
    return int(match.group(1))


def leads(sweeper: WorkerProcess, task: str) -> bool:
    return Lease.objects.filter(name=f"sweeper:{task}", holder__contains=f":{sweeper.pid}:").exists()


def test_a_sweeper_whose_clock_is_ahead_rescues_no_live_lease(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # Lease 3 s, heartbeat 1 s: a sweeper 60 s ahead would see every lease as expired 57 s ago.
    sweeper = workers.start("meepo_sweep", "record", launcher=SKEWED, MEEPO_TEST_CLOCK_SKEW=str(SKEW))
    wait_until(lambda: leads(sweeper, "record"), timeout=30, message="the skewed sweeper to lead 'record'")
    assert f"{SKEW_BANNER} +{SKEW} s" in sweeper.output()
    workers.consume("record", "--no-sweep")  # the skewed sweeper is the only one
    job = Job.objects.push("record", json={"sleep": 8})
    wait_until(lambda: finished(job.id) or rescued(job.id), timeout=60, message="the long job to finish")
    row = Job.objects.get(id=job.id)
    assert row.rescues == 0, f"the sweeper took the live worker's lease {row.rescues} time(s)"
    assert Run.objects.filter(job_id=job.id).count() == 1, "it ran once"
    assert row.status == "done"
    assert leads(sweeper, "record") and sweeper.process and sweeper.process.poll() is None, sweeper.output()
    assert f"this host's clock is {SKEW}.0 s ahead of the database's" in sweeper.output(), "it measured its offset"


def test_a_job_pushed_from_a_host_whose_clock_is_ahead_runs_at_once(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    workers.consume("record")
    job_id = push_from_a_skewed_host(workers, SKEW, '{"sleep": 0}', "--json")
    # Promptly, not 60 s later: the bound is a third of the skew, far above the pickup time of a normal run.
    wait_until(lambda: finished(job_id), timeout=SKEW / 3, message="the job to run before its producer's skew")
    assert Job.objects.get(id=job_id).status == "done"
    assert Run.objects.filter(job_id=job_id).count() == 1


def test_a_delay_from_a_host_whose_clock_is_behind_is_still_honoured(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    workers.consume("record")
    delay = 8
    pushed_after = timezone.now()  # this host's clock is the database's (same host)
    job_id = push_from_a_skewed_host(workers, -SKEW, '{"sleep": 0}', "--json", "--delay", str(delay))
    wait_until(lambda: finished(job_id), timeout=SKEW / 2, message="the delayed job to run")
    run = Run.objects.get(job_id=job_id)  # created by the worker, whose clock is right
    assert run.created_at >= pushed_after + timedelta(seconds=delay), (
        f"it ran {(run.created_at - pushed_after).total_seconds():.1f} s after the push, before its {delay} s delay")
