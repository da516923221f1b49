"""Each test run gets a test database of its own unless MEEPO_TEST_DB_NAME names one; children inherit it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
PROBE = ("import json, os, testproject.settings as s; "
         "print(json.dumps([s.DATABASES['default']['TEST']['NAME'], os.environ['MEEPO_TEST_DB_NAME']]))")


def _names(**env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k != "MEEPO_TEST_DB_NAME"}
    base["DATABASE_URL"] = "mysql://root@127.0.0.1:3306/meepo"
    out = subprocess.run([sys.executable, "-c", PROBE], env={**base, **env}, cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def test_two_runs_without_the_variable_get_different_names_and_export_them() -> None:
    first, second = _names(), _names()
    assert first[0] != second[0]
    assert first[0].startswith("test_meepo_") and first[0] == first[1], "exported for child processes"


def test_the_variable_still_names_it() -> None:
    assert _names(MEEPO_TEST_DB_NAME="test_meepo_mine") == ["test_meepo_mine", "test_meepo_mine"]


def test_this_run_exported_the_name_its_settings_use() -> None:
    assert os.environ["MEEPO_TEST_DB_NAME"] in str(settings.DATABASES["default"]["TEST"]["NAME"])
