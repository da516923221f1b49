"""Flow control end to end: real ``meepo_consume`` processes, the real database and Redis (both dispatchers).

The jobs are in testproject/jobs_flow.py; each run appends its start and end to a file, from which the test
computes the largest number of runs of one task that overlapped in time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from django_meepo import Job
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DISPATCHERS = ["redis", "database"]


def runs(log: Path) -> list[tuple[str, int, float, float]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        task, job_id, start, end = line.split()
        out.append((task, int(job_id), float(start), float(end)))
    return out


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """The largest number of spans open at one instant (an end at the same instant as a start closes first)."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_max_overlap_counts_what_overlaps() -> None:
    assert max_overlap([(0, 1), (1, 2)]) == 1
    assert max_overlap([(0, 2), (1, 3), (1.5, 1.6)]) == 3


def push(task: str, n: int, log: Path, dispatch: str, sleep: float) -> list[int]:
    with override_settings(MEEPO={**settings.MEEPO, "DISPATCH": dispatch}):
        return [j.id for j in Job.objects.push_many(task, json=[{"log": str(log), "sleep": sleep}] * n)]


@pytest.mark.parametrize("dispatch", DISPATCHERS)
def test_a_tasks_parallel_holds_in_a_multi_task_worker_and_no_backlog_starves_the_other(  # type: ignore[no-untyped-def]
        dispatch, workers, redis, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    serial = push("flow_serial", 12, log, dispatch, 0.1)  # parallel=1: about 1.2 s of backlog
    wide = push("flow_wide", 60, log, dispatch, 0.1)  # parallel=4: about 1.5 s of backlog
    worker = workers.consume("flow_serial", "flow_wide", MEEPO_DISPATCH=dispatch)
    total = len(serial) + len(wide)
    wait_until(lambda: len(runs(log)) >= total, timeout=180, interval=0.2,
               message=f"{total} runs; worker log: {worker.output()[-3000:]}")
    done = runs(log)
    serial_spans = [(s, e) for t, _, s, e in done if t == "flow_serial"]
    wide_spans = [(s, e) for t, _, s, e in done if t == "flow_wide"]
    assert sorted(i for t, i, _, _ in done if t == "flow_serial") == serial  # each ran once
    assert max_overlap(serial_spans) == 1, f"flow_serial (parallel=1) overlapped: {sorted(serial_spans)}"
    assert max_overlap(wide_spans) <= 4
    # Neither backlog waited for the other to drain: each task started runs while the other still had some.
    assert min(s for s, _ in serial_spans) < max(s for s, _ in wide_spans)
    assert min(s for s, _ in wide_spans) < max(s for s, _ in serial_spans)


@pytest.mark.parametrize("dispatch", DISPATCHERS)
def test_a_pause_holds_across_a_worker_restart_and_resume_picks_up(  # type: ignore[no-untyped-def]
        dispatch, workers, redis, tmp_path: Path) -> None:
    from django_meepo import api

    log = tmp_path / "runs.log"
    api.pause("flow_wide", by="test")
    wide = push("flow_wide", 6, log, dispatch, 0.01)  # pushes are accepted while paused
    serial = push("flow_serial", 2, log, dispatch, 0.01)
    first = workers.consume("flow_serial", "flow_wide", MEEPO_DISPATCH=dispatch)
    wait_until(lambda: len(runs(log)) >= 2, timeout=120, interval=0.2,
               message=f"the unpaused task's jobs to run; worker log: {first.output()[-3000:]}")
    first.signal(15)  # SIGTERM: a clean stop
    assert first.wait(timeout=120) == 0
    second = workers.consume("flow_serial", "flow_wide", MEEPO_DISPATCH=dispatch)
    more = push("flow_serial", 2, log, dispatch, 0.01)
    wait_until(lambda: len(runs(log)) >= 4, timeout=120, interval=0.2,
               message=f"the restarted worker to run jobs; worker log: {second.output()[-3000:]}")
    assert {t for t, *_ in runs(log)} == {"flow_serial"}, "a paused task's job ran"
    assert sorted(i for _, i, *_ in runs(log)) == sorted(serial + more)
    assert set(Job.objects.filter(id__in=wide).values_list("status", flat=True)) == {"todo"}
    assert api.resume("flow_wide") == ["flow_wide"]
    wait_until(lambda: len(runs(log)) >= 10, timeout=120, interval=0.2,
               message=f"the resumed task's jobs to run; worker log: {second.output()[-3000:]}")
    assert sorted(i for t, i, *_ in runs(log) if t == "flow_wide") == wide


def test_a_job_running_when_its_task_is_paused_finishes_and_nothing_more_is_claimed(  # type: ignore[no-untyped-def]
        workers, redis, tmp_path: Path) -> None:
    from django_meepo import api

    log = tmp_path / "runs.log"
    [running] = push("flow_serial", 1, log, "redis", 4.0)
    worker = workers.consume("flow_serial", "flow_wide")
    wait_until(lambda: Job.objects.filter(id=running, status="doing").exists(), timeout=120, interval=0.1,
               message=f"the job to start; worker log: {worker.output()[-3000:]}")
    api.pause("flow_serial")  # the worker sees it within a second: before the running job's 4 s are over
    wait_until(lambda: Job.objects.filter(id=running, status="done").exists(), timeout=120, interval=0.2,
               message=f"the running job to finish; worker log: {worker.output()[-3000:]}")
    later = push("flow_serial", 3, log, "redis", 0.01)
    [marker] = push("flow_wide", 1, log, "redis", 0.01)  # pushed after them, of a task not paused
    wait_until(lambda: marker in [i for _, i, *_ in runs(log)], timeout=120, interval=0.2,
               message=f"the marker job; worker log: {worker.output()[-3000:]}")
    assert [i for t, i, *_ in runs(log) if t == "flow_serial"] == [running]
    assert set(Job.objects.filter(id__in=later).values_list("status", flat=True)) == {"todo"}
    api.resume("flow_serial")
    wait_until(lambda: len(runs(log)) == 5, timeout=120, interval=0.2,
               message=f"the resumed jobs; worker log: {worker.output()[-3000:]}")
