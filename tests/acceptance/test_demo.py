"""The README's demo command on a clean checkout with no DATABASE_URL and no REDIS_URL: SQLite, no Redis."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.workers import ROOT

pytestmark = pytest.mark.slow


def clean_checkout(target: Path) -> Path:
    """The repository's files (tracked, and new ones not ignored) copied to ``target``: no .demo/, no database."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


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
