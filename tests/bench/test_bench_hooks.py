"""The benchmark's hooks workload (bench/hook_workloads.py) on a tiny size: every mode ran every job, with the
hooks each mode asks for (a worker whose hooks differ stops itself, which would be an error here), and the
tracing mode's workers exported a span per job. Counts, never times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import connection

from bench import cli
from tests.bench.test_bench_smoke import _server_urls

JOBS = 100


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_hooks_workload_measures_each_mode_with_its_hooks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database_url, redis_url = _server_urls()
    results_file = tmp_path / "results.json"
    code = cli.main(["--systems", "meepo", "--workloads", "hooks", "--variants", "1x4", "--runs", "1",
                     "--size", f"jobs={JOBS}", "--size", "stall=20", "--database-url", database_url,
                     "--redis-url", redis_url, "--meepo-db", connection.settings_dict["NAME"],
                     "--json", str(results_file)])
    table = capsys.readouterr().out
    results = json.loads(results_file.read_text())

    assert code == 0, results["errors"]
    assert {s["figure"] for s in results["samples"]} == {
        "hooks_none", "hooks_metrics", "hooks_tracing_api", "hooks_tracing", "hooks_metrics_cost",
        "hooks_tracing_api_cost", "hooks_tracing_cost"}
    assert sorted((c["variant"], c["expected"], c["ran"]) for c in results["checks"]) == [
        ("1x4 metrics", JOBS, JOBS), ("1x4 none", JOBS, JOBS), ("1x4 tracing", JOBS, JOBS),
        ("1x4 tracing_api", JOBS, JOBS)]
    assert "cost of [tracing] with an SDK: processed/s lost against none, same run (%)" in table
