"""OpenTelemetry spans through ``opentelemetry-api`` alone (the optional ``[tracing]`` extra): one producer span per
push, one consumer span per run, linked across the queue.

:data:`ENABLED` is decided once, at import: True when ``opentelemetry`` (the API) imports. When it is False the
callers (``push.py``, ``execution.py``) test the flag and call nothing here. With the API but no SDK configured,
the spans are the API's non-recording ones and no trace context is stored.

Following OpenTelemetry's messaging semantic conventions:

* **push** — a span ``send <task>`` of kind PRODUCER (one for a ``push_many`` batch), current while the row is
  INSERTed, with ``messaging.system = "django-meepo"``, ``messaging.operation.type = "send"`` (and the older
  ``messaging.operation = "publish"``), ``messaging.destination.name`` = the task, ``messaging.message.id`` = the
  job id (a batch: ``messaging.batch.message_count``);
* **run** — a span ``process <task>`` of kind CONSUMER around the job function, current while it runs (spans the
  function makes are its children), with ``messaging.operation.type = "process"``, the same attributes, the
  attempt number, and a **link** to the push's span (a run may come long after the push, and a job runs once or
  more: a link, not a parent, is what the conventions ask for then). A failed run sets the span's status to
  ERROR with the exception's class.

Where the push's context travels (as the configured propagators write it, W3C ``traceparent`` by default): the
job row's nullable ``trace_context`` column (migration
``0010_trace_context``), written in the INSERT only when the push ran in a recorded span — the payload is the
user's bytes, with no envelope to put it in, and Redis carries ids and cids only. The claim reads it back with the
row. What if the column's value is malformed (edited by hand)? The run gets no link, and still runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

try:  # the optional extra: decided once, at import
    from opentelemetry import propagate as _propagate
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - exercised by a subprocess test that hides the module
    _trace = None  # type: ignore[assignment]
    _propagate = None  # type: ignore[assignment]

ENABLED: bool = _trace is not None
SYSTEM = "django-meepo"
MAX_CONTEXT = 1000  # the column's length

_tracer: Any = _trace.get_tracer("django_meepo") if _trace is not None else None


def _attributes(task: str, operation: str, legacy: str) -> dict[str, Any]:
    return {"messaging.system": SYSTEM, "messaging.operation.type": operation, "messaging.operation": legacy,
            "messaging.operation.name": "push" if operation == "send" else "run",
            "messaging.destination.name": task}


def carrier_text() -> str | None:
    """The current context as the configured propagators write it (W3C ``traceparent`` and ``tracestate`` by
    default; B3 or others if the application set them), as JSON of at most :data:`MAX_CONTEXT` characters: an
    oversized carrier keeps only ``traceparent`` (the link survives, vendor state is dropped), or is not stored."""
    carrier: dict[str, str] = {}
    _propagate.inject(carrier)
    if not carrier:
        return None
    text = json.dumps(carrier, separators=(",", ":"), sort_keys=True)
    if len(text) > MAX_CONTEXT:
        if "traceparent" not in carrier:
            log.debug("meepo: a trace context of %d characters is not stored", len(text))
            return None
        text = json.dumps({"traceparent": carrier["traceparent"]}, separators=(",", ":"))
    return text


class Push:
    """The producer span of one push (or batch) and the trace context its rows carry (None when not recorded)."""

    def __init__(self, span: Any) -> None:
        self.span = span
        self.context: str | None = None
        if span.is_recording():
            self.context = carrier_text()

    def pushed(self, ids: Sequence[int], created: bool = True) -> None:
        """The ids the push returned (``created`` False: an existing job, for an idempotency or unique key)."""
        if not self.span.is_recording():
            return
        if len(ids) == 1:
            self.span.set_attribute("messaging.message.id", str(ids[0]))
        else:
            self.span.set_attribute("messaging.batch.message_count", len(ids))
        if not created:
            self.span.set_attribute("meepo.job.existing", True)


@contextmanager
def producer(task: str, count: int = 1) -> Iterator[Push]:
    """The producer span of a push of ``count`` job(s) of ``task``, current inside; an exception is recorded."""
    kind = _trace.SpanKind.PRODUCER
    attributes = _attributes(task, "send", "publish")
    if count != 1:
        attributes["messaging.batch.message_count"] = count
    with _tracer.start_as_current_span(f"send {task}", kind=kind, attributes=attributes) as span:
        yield Push(span)


def _link(trace_context: str | None) -> list[Any]:
    if not trace_context:
        return []
    try:
        carrier = json.loads(trace_context)
        if not isinstance(carrier, dict):
            return []
        context = _trace.get_current_span(_propagate.extract({k: str(v) for k, v in carrier.items()}))
        span_context = context.get_span_context()
    except Exception:  # a hand-edited or foreign value: no link, the run goes on
        log.debug("meepo: ignoring an unreadable trace context %r", trace_context[:100])
        return []
    return [_trace.Link(span_context)] if span_context.is_valid else []


@contextmanager
def consumer(task: str, job_id: int, attempt: int, trace_context: str | None) -> Iterator[Any]:
    """The consumer span of one run, linked to its push's span when the row carries that context."""
    attributes = {**_attributes(task, "process", "process"), "messaging.message.id": str(job_id),
                  "meepo.job.attempt": attempt}
    with _tracer.start_as_current_span(f"process {task}", kind=_trace.SpanKind.CONSUMER, attributes=attributes,
                                       links=_link(trace_context)) as span:
        yield span


def run_failed(span: Any, error_class: str) -> None:
    """Mark a run's span failed (the worker caught the exception, so the span did not see it)."""
    if span.is_recording():
        span.set_attribute("error.type", error_class or "failed")
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, error_class or "failed"))
