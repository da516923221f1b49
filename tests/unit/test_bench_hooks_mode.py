"""$BENCH_HOOKS (bench/djangoproject/hooks.py) hides exactly the optional extras a benchmark mode runs without,
and django-meepo's flags follow: checked in fresh interpreters, since the flags are decided at import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.workers import ROOT

PROBE = """
import bench
from django_meepo import metrics, tracing
try:
    import prometheus_client  # noqa: F401
except ImportError:
    importable = False
else:
    importable = True
print(metrics.ENABLED, tracing.ENABLED, importable)
"""


def _flags(mode: str) -> str:
    env = {**os.environ, "BENCH_HOOKS": mode}
    try:
        out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True, timeout=60).stdout
    except subprocess.CalledProcessError as exc:
        raise AssertionError(exc.stderr) from exc
    return out.strip()


@pytest.mark.parametrize(("mode", "flags"), [("none", "False False False"), ("metrics", "True False True"),
                                             ("tracing_api", "False True False"), ("tracing", "False True False")])
def test_each_mode_hides_the_extras_it_runs_without(mode: str, flags: str) -> None:
    pytest.importorskip("prometheus_client")
    pytest.importorskip("opentelemetry")
    assert _flags(mode) == flags


def test_an_unknown_mode_is_refused() -> None:
    result = subprocess.run([sys.executable, "-c", "import bench"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "BENCH_HOOKS": "metric"}, timeout=60)
    assert result.returncode != 0
    assert "$BENCH_HOOKS='metric': expected one of none, metrics, tracing_api, tracing" in result.stderr
