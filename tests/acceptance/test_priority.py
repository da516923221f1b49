"""Exact priority end to end: jobs pushed with no worker running, then one real ``meepo_consume`` process with
one slot (``flow_serial``, parallel=1) runs them; the order of their runs (start times in the log) is checked.

Through Redis there used to be five bands: 10, 20, 30, 40, 49, 50, 100 ran as 50, 100, 10, 20, 30, 40, 49.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from django_meepo import Job
from tests.acceptance.test_flow import runs
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def push(priorities: list[int], log: Path, dispatch: str) -> list[tuple[int, int]]:
    """(id, priority) of each job pushed, in push order."""
    with override_settings(MEEPO={**settings.MEEPO, "DISPATCH": dispatch}):
        return [(Job.objects.push("flow_serial", json={"log": str(log), "sleep": 0.01}, priority=p).id, p)
                for p in priorities]


def run_order(workers, log: Path, dispatch: str, total: int) -> list[int]:  # type: ignore[no-untyped-def]
    worker = workers.consume("flow_serial", redis_only=dispatch == "redis", MEEPO_DISPATCH=dispatch)
    wait_until(lambda: len(runs(log)) >= total, timeout=120, interval=0.2,
               message=f"{total} runs; worker log: {worker.output()[-3000:]}")
    done = runs(log)
    assert len(done) == total, "each job ran once"
    return [job_id for _, job_id, _, _ in sorted(done, key=lambda r: r[2])]


@pytest.mark.parametrize("dispatch", ["redis", "database"])
def test_seven_close_priorities_run_highest_first(dispatch, workers, redis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "runs.log"
    pushed = push([10, 20, 30, 40, 49, 50, 100], log, dispatch)
    by_id = dict(pushed)
    assert [by_id[i] for i in run_order(workers, log, dispatch, len(pushed))] == [100, 50, 49, 40, 30, 20, 10]


@pytest.mark.parametrize("dispatch", ["redis", "database"])
def test_mixed_priorities_run_by_priority_then_first_in_first_out(  # type: ignore[no-untyped-def]
        dispatch, workers, redis, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    pushed = push([0, -1, 1, 0, -100, 7, 100, 0, -1, 7, -60, 60], log, dispatch)  # five bands: 1 before 7
    expected = [job_id for job_id, _ in sorted(pushed, key=lambda item: (-item[1], item[0]))]
    assert run_order(workers, log, dispatch, len(pushed)) == expected
