"""A typo in MEEPO's keys is logged at start-up by every process, not only where system checks run."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from django_meepo.apps import warn_unknown_keys

ROOT = Path(__file__).resolve().parents[2]


def test_an_unknown_key_is_warned_about_with_a_suggestion(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="django_meepo"):
        assert warn_unknown_keys({"DISPATCH": "database", "RETENTON_DAYS": 7}) == ["RETENTON_DAYS"]
    [record] = [r for r in caplog.records if r.name == "django_meepo.apps"]
    assert record.levelno == logging.WARNING
    assert "'RETENTON_DAYS'" in record.getMessage()
    assert "did you mean 'RETENTION_DAYS'?" in record.getMessage()


def test_known_keys_and_a_non_dict_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="django_meepo"):
        assert warn_unknown_keys({"DISPATCH": "database"}) == []
        assert warn_unknown_keys(["not", "a", "dict"]) == []  # meepo.E001's business
    assert [r for r in caplog.records if r.name == "django_meepo.apps"] == []


def test_a_process_that_runs_no_checks_still_warns_once(tmp_path: Path) -> None:
    """django.setup() alone (a web server, a shell): the warning is on stderr, once."""
    (tmp_path / "typo_settings.py").write_text("from testproject.settings import *  # noqa: F403\n"
                               "MEEPO = {**MEEPO, 'WORKER_ALIVE_TTLL': 5}  # noqa: F405\n")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "typo_settings", "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    code = "import django; django.setup()"  # the test project logs django_meepo to stderr
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("unknown key 'WORKER_ALIVE_TTLL'") == 1, out.stderr
    assert "did you mean 'WORKER_ALIVE_TTL'?" in out.stderr
