"""Smoke test of the benchmark harness (bench/): django-meepo on a tiny workload against the test database.

It checks the table's rows and that every job ran — counts, never times. The peers need the ``bench`` extra;
without it they are listed as not installed, which is no error.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
from django.conf import settings
from django.db import connection

from bench import cli
from bench.systems import SYSTEMS

JOBS = 200


def _server_urls() -> tuple[str, str]:
    db = connection.settings_dict
    if connection.vendor != "mysql":
        pytest.skip("the benchmark runs on MariaDB/MySQL")
    auth = quote(db["USER"] or "root") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    redis = urlparse(settings.REDIS_URL)
    return f"mysql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}", f"redis://{redis.netloc}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_meepo_adapter_runs_every_job_and_reports_the_table(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    database_url, redis_url = _server_urls()
    results_file = tmp_path / "results.json"
    code = cli.main(["--systems", "meepo", "--workloads", "processed,push-bulk", "--variants", "1x4", "--runs", "1",
                     "--size", f"jobs={JOBS}", "--size", "stall=20", "--database-url", database_url,
                     "--redis-url", redis_url, "--meepo-db", connection.settings_dict["NAME"],
                     "--json", str(results_file), "--markdown", str(tmp_path / "table.md")])
    table = capsys.readouterr().out
    results = json.loads(results_file.read_text())

    assert code == 0, results["errors"]
    assert results["errors"] == []
    rows = [line.split("  ")[0] for line in table.splitlines() if "django-meepo  " in line]
    for heading in ("processed (jobs/s)", "pushed one at a time (jobs/s)", "pushed in bulk (jobs/s)"):
        assert heading in rows, table
    assert {(s["figure"], s["variant"]) for s in results["samples"]} == {
        ("processed", "1x4"), ("push_one", ""), ("push_bulk", "")}
    assert [(c["workload"], c["expected"], c["ran"], c["calls"]) for c in results["checks"]] == [
        ("processed", JOBS, JOBS, JOBS)]
    assert "| processed (jobs/s) | django-meepo |" in (tmp_path / "table.md").read_text()

    statuses = results["statuses"]
    assert statuses["meepo"] == "ran"
    for name, cls in SYSTEMS.items():
        if name != "meepo":
            installed = all(importlib.util.find_spec(m) for m in cls.modules)
            assert statuses[name].startswith("not selected" if installed else "not installed"), statuses[name]
