"""Metrics and tracing without services: the names and labels, the outcome mapping, and the no-op path when
prometheus-client or opentelemetry is not installed (simulated in a subprocess that hides the modules)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest

from django_meepo import execution, metrics, tracing
from django_meepo.context import JobContext
from django_meepo.states import ClaimedJob

ROOT = Path(__file__).resolve().parents[2]

# A child process in which `import prometheus_client` and `import opentelemetry` fail, as without the extras.
HIDDEN = """
import sys
for name in ("prometheus_client", "opentelemetry"):
    sys.modules[name] = None  # an import of a name mapped to None raises ImportError
import django, json
django.setup()
"""


def run_hidden(code: str) -> dict[str, Any]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "testproject.settings"}
    done = subprocess.run([sys.executable, "-c", HIDDEN + textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_the_extras_the_flags_are_off_and_the_view_and_the_port_say_what_to_install() -> None:
    result = run_hidden("""
        from django.core.management import call_command
        from django.core.management.base import CommandError
        from django.test import RequestFactory
        from django_meepo import execution, metrics, push, statemachine, tracing, worker
        from django_meepo.metrics import views
        from django_meepo.metrics.server import serve
        response = views.metrics(RequestFactory().get("/metrics/"))
        try:
            call_command("meepo_consume", "demo", "--metrics-port", "9")
            command = "no error"
        except CommandError as exc:
            command = str(exc)
        try:
            serve(9)
            served = "no error"
        except Exception as exc:
            served = f"{type(exc).__name__}: {exc}"
        loaded = sorted(m for m in sys.modules if m.startswith(("prometheus_client", "opentelemetry"))
                        and sys.modules[m] is not None)
        print(json.dumps({"metrics": metrics.ENABLED, "tracing": tracing.ENABLED, "status": response.status_code,
                          "body": response.content.decode(), "command": command, "served": served,
                          "loaded": loaded, "pushed": metrics.PUSHED is None}))
    """)
    assert result["metrics"] is False and result["tracing"] is False
    assert result["status"] == 501 and "pip install 'django-meepo[metrics]'" in result["body"]
    assert result["command"].startswith("--metrics-port: prometheus-client is not installed")
    assert result["served"].startswith("ImproperlyConfigured: prometheus-client is not installed")
    assert result["loaded"] == [] and result["pushed"] is True


def test_without_the_extras_a_run_calls_no_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disabled path is the plain call: no timing, no span, no hook (each would raise here)."""
    monkeypatch.setattr(metrics, "ENABLED", False)
    monkeypatch.setattr(tracing, "ENABLED", False)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a hook ran while its extra was off")

    for name in ("ran", "pushed", "claimed", "finished"):
        monkeypatch.setattr(metrics, name, boom)
    monkeypatch.setattr(tracing, "consumer", boom)
    monkeypatch.setattr(execution.time, "perf_counter", boom)
    outcome = execution.run_job(_task(lambda job: "ok"), _ctx())
    assert (outcome.kind, outcome.result) == ("done", "ok")


def test_with_the_extra_a_run_is_timed_by_task() -> None:
    before = REGISTRY.get_sample_value("meepo_job_duration_seconds_count", {"task": "unit_timed"}) or 0
    outcome = execution.run_job(_task(lambda job: None, "unit_timed"), _ctx("unit_timed"))
    assert outcome.kind == "done"
    assert REGISTRY.get_sample_value("meepo_job_duration_seconds_count", {"task": "unit_timed"}) == before + 1


def test_the_metric_names_types_and_labels_follow_the_conventions() -> None:
    metrics.PUSHED.labels("unit_names")
    metrics.STARTED.labels("unit_names")
    metrics.FINISHED.labels("unit_names", "done")
    metrics.DURATION.labels("unit_names")
    metrics.PICKUP_LATENCY.labels("unit_names")
    text = generate_latest(REGISTRY).decode()
    for line in ("# TYPE meepo_jobs_pushed_total counter", "# TYPE meepo_jobs_started_total counter",
                 "# TYPE meepo_jobs_finished_total counter", "# TYPE meepo_job_duration_seconds histogram",
                 "# TYPE meepo_job_pickup_latency_seconds histogram",
                 'meepo_jobs_pushed_total{task="unit_names"} 0.0',
                 'meepo_jobs_finished_total{outcome="done",task="unit_names"} 0.0',
                 'meepo_job_duration_seconds_bucket{le="3600.0",task="unit_names"} 0.0',
                 'meepo_job_pickup_latency_seconds_count{task="unit_names"} 0.0'):
        assert line in text, line
    assert metrics.FINISHED._labelnames == ("task", "outcome")


@pytest.mark.parametrize(("kind", "status", "outcome"), [
    (metrics.DONE, "done", "done"), (metrics.FAILURE, "failed", "failed"), (metrics.FAILURE, "todo", "retried"),
    (metrics.SNOOZED, "todo", "snoozed"), (metrics.RELEASED, "todo", "released"),
    (metrics.RESCUED, "todo", "rescued"), (metrics.RESCUED, "zombie", "rescued")])
def test_each_verb_kind_gives_its_outcome(kind: str, status: str, outcome: str) -> None:
    assert metrics.outcome_of(kind, status) == outcome
    assert outcome in metrics.OUTCOMES


def test_the_worker_slots_gauge_counts_a_worker_only_while_it_runs() -> None:
    class FakeWorker:
        capacity = 5

    fake = FakeWorker()
    with metrics.worker_running(fake):
        assert fake in metrics.running_workers()
    assert fake not in metrics.running_workers()


def _task(function: Any, name: str = "unit") -> Any:
    from django_meepo.options import build_options
    from django_meepo.registry import Task

    return Task(name=name, function=function, options=build_options(), path="tests.unit")


def _ctx(task: str = "unit") -> JobContext:
    from django.utils import timezone

    job = ClaimedJob(id=1, task=task, cid=2, payload=b"", failed_times=0, attempts=1, priority=0,
                     started_at=timezone.now())
    return JobContext(job=job, _commit=lambda *a: None, _heartbeat=lambda *a: None)  # type: ignore[arg-type]


def test_the_grafana_dashboard_is_valid_json_and_charts_only_metrics_that_exist() -> None:
    import re

    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("throughput", "failures", "latency", "queue depth"):
        assert topic in titles, topic
    known = {"meepo_jobs_pushed_total", "meepo_jobs_started_total", "meepo_jobs_finished_total",
             "meepo_job_duration_seconds_bucket", "meepo_job_pickup_latency_seconds_bucket", "meepo_queue_depth",
             "meepo_queue_scheduled", "meepo_jobs_running", "meepo_queue_oldest_due_age_seconds",
             "meepo_worker_slots", "meepo_dispatcher_mode"}
    used = {name for e in exprs for name in re.findall(r"\bmeepo_[a-z_]+", e)}
    assert used <= known, used - known
    docs = (ROOT / "docs" / "metrics.md").read_text()
    for name in known:
        assert f"`{name.removesuffix('_bucket')}`" in docs, name


def test_the_dispatcher_mode_follows_the_failover_breaker() -> None:
    from django_meepo.dispatch.failover import FailoverDispatcher
    from django_meepo.metrics.collectors import dispatcher_mode

    failover = FailoverDispatcher(object(), object())  # type: ignore[arg-type]
    assert dispatcher_mode(failover) == "redis"
    failover.breaker.failed()  # Redis stopped answering: workers claim from the table
    assert dispatcher_mode(failover) == "database"
    failover.breaker.succeeded()
    assert dispatcher_mode(failover) == "redis"
    assert dispatcher_mode(object()) is None
