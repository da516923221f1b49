"""The pieces of the scale bench workloads that need no server: CPU accounting from /proc, the report of variants
it does not know (host counts), and the settings for PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import cpu
from bench.report import Summaries
from bench.stats import Sample


def test_cpu_seconds_count_a_busy_process_tree_and_not_an_idle_one() -> None:
    spin = ("import os, sys, time\nif os.fork() == 0:\n    t = time.process_time()\n"
            "    while time.process_time() - t < 0.4: pass\n    os._exit(0)\nos.wait()\nsys.stdin.read()")
    busy = subprocess.Popen([sys.executable, "-c", spin], stdin=subprocess.PIPE)
    idle = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        meter = cpu.Meter({"busy": [busy.pid], "idle": [idle.pid]})
        meter.start()
        polls = 0
        while cpu.seconds([busy.pid]) < 0.4 and polls < 200:  # the forked child's CPU counts once it is reaped
            subprocess.run(["sleep", "0.05"], check=True)
            polls += 1
        used = meter.stop()
    finally:
        for proc in (busy, idle):
            proc.communicate(b"", timeout=30)
    assert used["busy"] >= 0.3, used
    assert used["idle"] < 0.1, used


def test_a_process_that_is_gone_counts_nothing() -> None:
    assert cpu.seconds([2**22 + 12345]) == 0.0
    assert cpu.tree(2**22 + 12345) == {2**22 + 12345}


def test_the_report_lists_variants_it_does_not_know_after_the_known_ones() -> None:
    samples = [Sample(system="meepo", figure="hosts_processed", variant=v, value=1.0, run=0)
               for v in ("4 hosts", "1 host", "2 hosts")]
    samples.append(Sample(system="meepo", figure="processed", variant="2x2", value=1.0, run=0))
    samples.append(Sample(system="meepo", figure="processed", variant="zz", value=1.0, run=0))
    summaries = Summaries(samples)
    assert summaries.variants("meepo", "hosts_processed") == ["1 host", "2 hosts", "4 hosts"]
    assert summaries.variants("meepo", "processed") == ["2x2", "zz"]


@pytest.mark.parametrize(("url", "engine", "port"), [
    ("postgres://postgres@127.0.0.1:5432", "django.db.backends.postgresql", "5432"),
    ("mysql://root@10.1.0.1:3307", "django.db.backends.mysql", "3307"),
])
def test_the_bench_settings_read_a_postgres_or_a_mysql_url(monkeypatch: pytest.MonkeyPatch, url: str,
                                                          engine: str, port: str) -> None:
    from bench.djangoproject.settings_base import database

    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("BENCH_DB_NAME", "bench_x")
    db = database()
    assert (db["ENGINE"], db["NAME"], db["PORT"]) == (engine, "bench_x", port)
