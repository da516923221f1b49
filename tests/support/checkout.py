"""A clean copy of this checkout, for tests that build or run the project as a user would (no .demo/, no venv)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.workers import ROOT


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
