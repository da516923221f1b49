"""The README's demo command on a clean checkout with no DATABASE_URL and no REDIS_URL: SQLite, no Redis."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.checkout import clean_checkout

pytestmark = pytest.mark.slow


def test_the_demo_runs_with_no_services(tmp_path: Path) -> None:
    checkout = clean_checkout(tmp_path / "checkout")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE") and not k.startswith("MEEPO_")}
    env.update(MEEPO_VENV=str(Path(sys.executable).parent.parent), MEEPO_DEMO_SKIP_SETUP="1")
    result = subprocess.run(["bash", "scripts/demo.sh", "--jobs", "50"], cwd=checkout, env=env,
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"django-meepo demo: database SQLite \(.*/\.demo/meepo-demo\.sqlite3\), dispatch through the "
                     r"database dispatcher", result.stdout), output
    assert "pushed 50 jobs" in result.stdout
    assert re.search(r"consumed 50 jobs in [\d.]+ s", result.stdout), output
    assert "by status: done 50" in result.stdout, output
    assert re.search(r"job \d+ returned '[0-9a-f]{16}'", result.stdout), output
    assert (checkout / ".demo" / "meepo-demo.sqlite3").is_file()
