"""Global concurrency and rate limits end to end: several real ``meepo_consume`` processes against the real
database and Redis, with both dispatchers. Each run appends its start and end to a file (testproject/jobs_flow.py);
the tests compute, from those, the most runs that overlapped and the most starts in any window."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from django_meepo import Job
from tests.acceptance.test_flow import DISPATCHERS, max_overlap, runs
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WORKERS = 3
# A token is taken just before the claim's UPDATE (one statement later, same thread), so the claims of one
# window may come from takes up to this much apart.
TAKE_TO_CLAIM = 0.25


def push(task: str, n: int, log: Path, dispatch: str, sleep: float, key: str | None = None,
         **extra: float) -> list[int]:
    with override_settings(MEEPO={**settings.MEEPO, "DISPATCH": dispatch}):
        return [j.id for j in Job.objects.push_many(task, json=[{"log": str(log), "sleep": sleep, **extra}] * n,
                                                    concurrency_key=key)]


def start_workers(workers, task: str, dispatch: str, n: int = WORKERS) -> list:  # type: ignore[no-untyped-def]
    return [workers.consume(task, MEEPO_DISPATCH=dispatch) for _ in range(n)]


def logs(procs: list) -> str:  # type: ignore[type-arg]
    return "\n".join(p.output()[-1500:] for p in procs)


def most_starts_in(starts: list[float], window: float) -> int:
    """The most starts within any closed window of ``window`` seconds."""
    starts = sorted(starts)
    most, lo = 0, 0
    for hi, t in enumerate(starts):
        while t - starts[lo] > window:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


def test_most_starts_in_counts_a_window() -> None:
    assert most_starts_in([0, 0.5, 1.0, 1.01, 3], 1.0) == 3
    assert most_starts_in([], 1.0) == 0


@pytest.mark.parametrize("dispatch", DISPATCHERS)
def test_a_task_concurrency_limit_holds_across_several_workers(  # type: ignore[no-untyped-def]
        dispatch, workers, redis, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    ids = push("flow_limited", 30, log, dispatch, 0.2)  # concurrency=3; 3 workers × parallel 4 = 12 threads
    procs = start_workers(workers, "flow_limited", dispatch)
    wait_until(lambda: len(runs(log)) >= len(ids), timeout=240, interval=0.2,
               message=f"{len(ids)} runs; worker logs: {logs(procs)}")
    done = runs(log)
    assert sorted(i for _, i, _, _ in done) == sorted(ids)  # each ran once: a held-back job was never lost
    spans = [(s, e) for _, _, s, e in done]
    assert max_overlap(spans) <= 3, f"more than 3 flow_limited runs overlapped: {sorted(spans)}"
    assert max_overlap(spans) >= 2, "the limit is not 1: several ran at once"
    # A run is logged before its worker's committer writes `done`: wait for the last commits to land.
    wait_until(lambda: not Job.objects.filter(id__in=ids, status="doing").exists(), timeout=60, interval=0.2,
               message=f"the last commits; worker logs: {logs(procs)}")
    assert set(Job.objects.filter(id__in=ids).values_list("status", "attempts")) == {("done", 1)}  # none burnt


@pytest.mark.parametrize("dispatch", DISPATCHERS)
def test_a_key_concurrency_limit_runs_one_job_per_key_and_keys_side_by_side(  # type: ignore[no-untyped-def]
        dispatch, workers, redis, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    keys = {key: push("flow_keyed", 6, log, dispatch, 0.15, key=key) for key in ("acct:1", "acct:2", "acct:3")}
    key_of = {i: key for key, ids in keys.items() for i in ids}
    procs = start_workers(workers, "flow_keyed", dispatch)
    wait_until(lambda: len(runs(log)) >= len(key_of), timeout=240, interval=0.2,
               message=f"{len(key_of)} runs; worker logs: {logs(procs)}")
    done = runs(log)
    assert sorted(i for _, i, _, _ in done) == sorted(key_of)
    for key in keys:
        spans = [(s, e) for _, i, s, e in done if key_of[i] == key]
        assert max_overlap(spans) == 1, f"two {key} runs overlapped: {sorted(spans)}"
    assert max_overlap([(s, e) for _, _, s, e in done]) >= 2, "different keys never ran side by side"


@pytest.mark.parametrize("dispatch", DISPATCHERS)
def test_a_rate_limit_holds_across_workers_within_the_limit_plus_one_burst(  # type: ignore[no-untyped-def]
        dispatch, workers, redis, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    ids = push("flow_rated", 40, log, dispatch, 0.01)  # rate="10/s": a burst of 10, then one per 0.1 s
    procs = start_workers(workers, "flow_rated", dispatch)
    wait_until(lambda: len(runs(log)) >= len(ids), timeout=240, interval=0.2,
               message=f"{len(ids)} runs; worker logs: {logs(procs)}")
    assert sorted(i for _, i, _, _ in runs(log)) == sorted(ids)
    # The limit governs claims: a token is taken, then the job claimed (its started_at written on the database's
    # clock) in the next statement. Runs start later, in a worker thread: on a loaded machine (CI runs three
    # suites side by side) a worker that got no CPU for a moment started a second's claims at once, so the
    # runs' own start times bunch beyond any bound while the claims did not.
    rows = Job.objects.filter(id__in=ids).values_list("attempts", "started_at")
    assert {a for a, _ in rows} == {1}
    claims = [t.timestamp() for _, t in rows]
    for window in (0.5, 1.0, 2.0, 3.0):
        allowed = 10 + 10 * (window + TAKE_TO_CLAIM)  # the limit over the window, plus one burst
        assert most_starts_in(claims, window) <= allowed, f"over {allowed} claims in {window} s: {sorted(claims)}"
    starts = [s for _, _, s, _ in runs(log)]
    assert max(starts) - min(starts) >= 2.5, "40 jobs at 10/s after a burst of 10 take at least 3 s"


def test_a_sigkilled_workers_slots_come_back_within_a_lease(workers, redis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "runs.log"
    stuck = push("flow_limited", 3, log, "redis", 0.05, sleep_first=60)  # take all 3 slots, then hang
    first = workers.consume("flow_limited")
    wait_until(lambda: Job.objects.filter(id__in=stuck, status="doing").count() == 3, timeout=120, interval=0.1,
               message=f"the 3 slots to be taken; worker log: {first.output()[-3000:]}")
    waiting = push("flow_limited", 3, log, "redis", 0.05)
    time.sleep(1.0)
    assert set(Job.objects.filter(id__in=waiting).values_list("status", flat=True)) == {"todo"}  # limit is full
    first.signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.time()
    second = workers.consume("flow_limited")
    # A loaded CI machine took seconds to start the second worker: count from when it consumes, not from the kill.
    wait_until(lambda: "consuming" in second.output(), timeout=120, interval=0.1,
               message=f"the second worker to start; its log: {second.output()[-3000:]}")
    ready_at = time.time()
    wait_until(lambda: len(runs(log)) >= 6, timeout=120, interval=0.2,
               message=f"the 6 jobs to run after the kill; worker log: {second.output()[-3000:]}")
    lease = 3.0  # FAST's lease_timeout
    first_start = min(s for _, _, s, _ in runs(log))
    freed_by = max(killed_at + lease, ready_at)  # the dead worker's leases ran out, and a worker was there
    assert first_start - freed_by <= 6.0, "the dead worker's slots were not freed within about a lease"
    assert sorted(i for _, i, _, _ in runs(log)) == sorted(stuck + waiting)
    assert max_overlap([(s, e) for _, _, s, e in runs(log)]) <= 3
