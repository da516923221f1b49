"""Under CI=true a missing service fails the run; elsewhere its tests are skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
ONE_TEST = "tests/integration/test_push.py::test_push_without_transaction_dispatches_at_once"


def run_pytest(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", ONE_TEST], cwd=ROOT,
                          env={**os.environ, "MEEPO_TEST_DB_NAME": f"test_meepo_ci_{os.getpid()}", **env},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("variable", ["REDIS_URL", "DATABASE_URL"])
def test_a_missing_service_fails_under_ci(variable: str) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0" if variable == "REDIS_URL" else f"mysql://root@127.0.0.1:{port}/meepo"
    result = run_pytest(CI="true", **{variable: url})
    assert result.returncode == 3, result.stdout + result.stderr
    assert "CI=true" in result.stdout + result.stderr


def test_a_missing_service_skips_outside_ci() -> None:
    result = run_pytest(CI="", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 0 and "1 skipped" in result.stdout, result.stdout + result.stderr
