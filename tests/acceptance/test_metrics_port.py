"""``meepo_consume --metrics-port``: a real worker process serves its metrics, scraped while it runs jobs."""

from __future__ import annotations

import re
import socket
import urllib.request

import pytest

from django_meepo import Job
from tests.support.services import free_port, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in an exposition (0 when absent); labels in any order."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if found == labels:
            return float(match.group(2))
    return 0.0


def scrape_or_empty(port: int) -> str:
    try:
        return scrape(port)
    except OSError:
        return ""


def test_the_counters_move_while_the_worker_runs(workers, redis) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    worker = workers.consume("record", extra=("--metrics-port", str(port), "--metrics-addr", "127.0.0.1"))
    # The port answers as soon as the command starts; the slots appear once the worker is built and running.
    wait_until(lambda: sample(scrape_or_empty(port), "meepo_worker_slots", state="total") == 4, timeout=60,
               message=f"the port to show the worker's 4 slots (record: PARALLEL 4); log: {worker.output()[-2000:]}")
    first = scrape(port)
    started0 = sample(first, "meepo_jobs_started_total", task="record")
    jobs = Job.objects.push_many("record", json=[{"sleep": 0.4}] * 12 + [{"fail_until": 2}])
    seen_busy = []

    def moving() -> bool:
        text = scrape(port)
        seen_busy.append(sample(text, "meepo_worker_slots", state="busy"))
        return sample(text, "meepo_jobs_started_total", task="record") > started0 and \
            Job.objects.filter(id__in=[j.id for j in jobs]).exclude(status="done").exists()

    wait_until(moving, timeout=60, interval=0.1,
               message=f"a scrape during the run; worker log: {worker.output()[-2000:]}")
    assert max(seen_busy) >= 1, seen_busy

    def all_done() -> bool:
        return not Job.objects.filter(id__in=[j.id for j in jobs]).exclude(status="done").exists()

    wait_until(all_done, timeout=120, message=f"every job done; worker log: {worker.output()[-2000:]}")
    wait_until(lambda: sample(scrape(port), "meepo_jobs_finished_total", task="record", outcome="done") == 13,
               timeout=30, message="the done commits to be counted")
    text = scrape(port)
    assert sample(text, "meepo_jobs_started_total", task="record") - started0 == 14  # the failed one ran twice
    assert sample(text, "meepo_jobs_finished_total", task="record", outcome="retried") == 1
    assert sample(text, "meepo_job_duration_seconds_count", task="record") == 14
    assert sample(text, "meepo_job_duration_seconds_sum", task="record") >= 12 * 0.4
    assert sample(text, "meepo_job_pickup_latency_seconds_count", task="record") == 14
    assert sample(text, "meepo_queue_collect_up") == 1
    assert sample(text, "meepo_queue_depth", task="record") == 0
    assert sample(text, "meepo_dispatcher_mode", mode="redis") == 1
    # pushes were made by this test process, not the worker: its pushed counter is not the worker's to show
    assert sample(text, "meepo_jobs_pushed_total", task="record") == 0
    assert "serving metrics on http://127.0.0.1:" in worker.output()


def test_a_taken_port_fails_the_worker_at_once_with_a_clear_error(workers) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = workers.consume("record", extra=("--metrics-port", str(port), "--metrics-addr", "127.0.0.1"))
        assert worker.wait(timeout=120) != 0
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}" in worker.output()


def test_a_bad_port_is_refused_by_name(workers) -> None:  # type: ignore[no-untyped-def]
    worker = workers.consume("record", extra=("--metrics-port", "70000"))
    assert worker.wait(timeout=120) != 0
    assert "argument --metrics-port: invalid port number (1-65535) value: '70000'" in worker.output()


def test_a_replaced_worker_serves_its_port_again(workers, redis) -> None:  # type: ignore[no-untyped-def]
    """``--max-jobs`` replaces the process by exec: the new one binds the same port (the old socket is closed at
    exec), so the worker keeps serving and does not stop on a taken port."""
    port = free_port()
    worker = workers.consume("record", extra=("--metrics-port", str(port), "--metrics-addr", "127.0.0.1",
                                              "--max-jobs", "2", "--parallel", "1"))
    jobs = Job.objects.push_many("record", json=[{}] * 5)
    wait_until(lambda: not Job.objects.filter(id__in=[j.id for j in jobs]).exclude(status="done").exists(),
               timeout=120, message=f"every job done; worker log: {worker.output()[-3000:]}")
    wait_until(lambda: scrape_or_empty(port), timeout=60,
               message=f"the port to answer after the replacements; worker log: {worker.output()[-3000:]}")
    log = worker.output()
    assert log.count("replacing the worker process") >= 2, log[-3000:]
    assert "cannot listen" not in log, log[-3000:]
    assert sample(scrape(port), "meepo_jobs_started_total", task="record") <= 2  # a new process: counted afresh
    assert worker.process is not None and worker.process.poll() is None
