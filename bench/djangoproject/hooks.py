"""Which of django-meepo's optional hooks a benchmark process runs with: ``$BENCH_HOOKS``.

* ``none`` (what every workload but ``hooks`` runs with) — neither extra: ``prometheus_client`` and
  ``opentelemetry`` are hidden from imports, so ``django_meepo.metrics.ENABLED`` and ``tracing.ENABLED`` are
  False, as in a project that did not install ``[metrics]`` or ``[tracing]`` (the figures stay comparable
  whatever the benchmark's virtualenv holds);
* ``metrics`` — ``prometheus-client`` imports (the ``[metrics]`` extra); OpenTelemetry is hidden;
* ``tracing_api`` — ``opentelemetry`` imports, but no SDK is configured: the API's non-recording spans (what a
  project gets when a dependency brings ``opentelemetry-api`` and nothing sets a tracer provider); no trace
  context is stored; ``prometheus_client`` is hidden;
* ``tracing`` — ``opentelemetry`` imports and an SDK tracer provider records every span, with a
  ``BatchSpanProcessor`` (the SDK's usual processor) in front of an exporter that only counts what it is handed
  (no network; the count goes to the results Redis, so the harness can check that the spans were made);
  ``prometheus_client`` is hidden;
* unset or empty — whatever is installed, nothing hidden.

:func:`hide` runs when the ``bench`` package is imported: before Django, django-meepo (which decides both flags at
import) and redis-py (which imports OpenTelemetry when it can), in every benchmark process — the runner starts its
harness children with ``none``, the Meepo adapter passes its mode to the workers. :func:`check` runs in the bench
app's ``ready()`` and stops the process when the flags are not what the mode asks — a benchmark that silently
measured the wrong thing would be worse than none.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from typing import Any

ENV = "BENCH_HOOKS"
NONE, METRICS, TRACING_API, TRACING = "none", "metrics", "tracing_api", "tracing"
MODES = (NONE, METRICS, TRACING_API, TRACING)
KEEPS = {NONE: (), METRICS: ("prometheus_client",), TRACING_API: ("opentelemetry",), TRACING: ("opentelemetry",)}
EXTRAS = ("prometheus_client", "opentelemetry")
SPANS_KEY = "spans"  # under the run's results key: spans the workers' exporters were handed


def mode() -> str:
    value = os.environ.get(ENV, "")
    if value and value not in MODES:
        raise RuntimeError(f"${ENV}={value!r}: expected one of {', '.join(MODES)} (or unset)")
    return value


class _Hidden(importlib.abc.MetaPathFinder):
    """Makes ``import <name>`` (and its submodules) fail as if the package were not installed."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (hidden: ${ENV}={mode()})", name=fullname)
        return None


def hide() -> None:
    """Hide the extras the mode leaves out. Raises if one was imported already (too late to hide it)."""
    current = mode()
    if not current:
        return
    names = [module for module in EXTRAS if module not in KEEPS[current]]
    early = [name for name in names if name in sys.modules]
    if early:
        raise RuntimeError(f"${ENV}={current}: {', '.join(early)} was imported before the settings")
    if not any(isinstance(finder, _Hidden) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Hidden(names))


def check() -> None:
    """Stop the process unless django-meepo's hooks are on and off as the mode says; start the tracer for
    ``tracing``."""
    current = mode()
    if not current:
        return
    from django_meepo import metrics, tracing

    wanted = {"metrics": current == METRICS, "tracing": current in (TRACING_API, TRACING)}
    found = {"metrics": metrics.ENABLED, "tracing": tracing.ENABLED}
    if wanted != found:
        raise RuntimeError(f"${ENV}={current}: django-meepo's hooks are {found}, expected {wanted} (is the "
                           f"extra installed? pip install -e '.[bench]')")
    if current == TRACING:
        _start_tracing()


def _start_tracing() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Counting(SpanExporter):
        """Counts the spans it is handed into the results Redis (when the process records there)."""

        def __init__(self) -> None:
            self.client: Any = None

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            from bench import recorder

            key = os.environ.get(recorder.ENV_KEY)
            if key:
                if self.client is None:
                    import redis

                    self.client = redis.Redis.from_url(os.environ[recorder.ENV_URL])
                self.client.incrby(f"{key}:{SPANS_KEY}", len(spans))
            return SpanExportResult.SUCCESS

    provider = TracerProvider()  # shut down (its spans flushed) at the process's exit
    provider.add_span_processor(BatchSpanProcessor(Counting()))
    trace.set_tracer_provider(provider)
