"""A worker says when it stops and how many jobs it handed back, in a project whose LOGGING names no handler
for django_meepo (a new project's): a real ``manage.py meepo_consume`` process."""

from __future__ import annotations

import re

import pytest

from django_meepo import Job
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_worker_logs_its_stop_and_hand_back_without_any_logging_setting(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    jobs = Job.objects.push_many("record", json=[{} for _ in range(3)])
    worker = workers.consume("record", "--max-jobs", "1", "--no-recycle",
                             DJANGO_SETTINGS_MODULE="tests.support.unlogged_settings")
    status = worker.wait(timeout=120)
    output = worker.output()
    assert status == 75, output  # replaced after one job, and told not to re-execute itself
    assert re.search(r"INFO django_meepo\.worker meepo: worker \S+ consuming record", output), output
    assert re.search(r"meepo: worker \S+ stopped after 1 job\(s\); handed back \d+ not started and 0 still running",
                     output), output
    wait_until(lambda: Job.objects.filter(id__in=[j.id for j in jobs], status="doing").count() == 0, timeout=30,
               message="nothing left claimed by the stopped worker")
