"""OpenTelemetry spans with the SDK's in-memory exporter: a producer span at push, a consumer span per run, linked.

The SDK's tracer replaces django-meepo's (``tracing._tracer``) for each test only: the process's global tracer
provider is left alone, so no other test records spans.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from django_meepo import Job, tracing
from tests.support.inprocess import running_worker
from tests.support.services import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("django_meepo"))
    yield exporter
    provider.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> list:  # type: ignore[type-arg]
    return [s for s in exporter.get_finished_spans() if s.name == name]


def test_a_push_and_its_run_are_linked_spans_with_the_messaging_attributes(spans) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", json={})
    [send] = named(spans, "send record")
    assert send.kind == trace.SpanKind.PRODUCER
    assert dict(send.attributes) == {
        "messaging.system": "django-meepo", "messaging.operation.type": "send", "messaging.operation": "publish",
        "messaging.operation.name": "push", "messaging.destination.name": "record",
        "messaging.message.id": str(job.id)}
    stored = json.loads(Job.objects.get(id=job.id).trace_context)
    assert stored["traceparent"].split("-")[1] == format(send.context.trace_id, "032x")
    with running_worker("record", sweep=False):
        wait_until(lambda: named(spans, "process record"), timeout=60, message="the consumer span")
    [process] = named(spans, "process record")
    assert process.kind == trace.SpanKind.CONSUMER
    assert process.attributes["messaging.system"] == "django-meepo"
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["messaging.destination.name"] == "record"
    assert process.attributes["messaging.message.id"] == str(job.id)
    assert process.attributes["meepo.job.attempt"] == 1
    assert [(link.context.trace_id, link.context.span_id) for link in process.links] == [
        (send.context.trace_id, send.context.span_id)]
    assert process.status.status_code == trace.StatusCode.UNSET


def test_a_failed_run_has_an_error_status_and_each_run_its_own_span(spans) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", json={"fail": True})  # MAX_FAILED_TIMES 3: three runs, each fails
    with running_worker("record", sweep=True):
        wait_until(lambda: len(named(spans, "process record")) == 3, timeout=60, message="three runs")
    runs = named(spans, "process record")
    assert sorted(s.attributes["meepo.job.attempt"] for s in runs) == [1, 2, 3]
    assert all(s.status.status_code == trace.StatusCode.ERROR for s in runs)
    assert all(s.attributes["error.type"] == "builtins.RuntimeError" for s in runs)
    [send] = named(spans, "send record")
    assert all(link.context.span_id == send.context.span_id for s in runs for link in s.links)
    assert Job.objects.get(id=job.id).status == "failed"


def test_push_many_is_one_producer_span_and_every_row_carries_it(spans) -> None:  # type: ignore[no-untyped-def]
    jobs = Job.objects.push_many("record", json=[{}, {}, {}])
    [send] = named(spans, "send record")
    assert send.attributes["messaging.batch.message_count"] == 3
    contexts = set(Job.objects.filter(id__in=[j.id for j in jobs]).values_list("trace_context", flat=True))
    assert len(contexts) == 1 and format(send.context.span_id, "016x") in contexts.pop()


def test_without_a_recording_tracer_nothing_is_stored() -> None:
    # The API alone (no SDK provider set in this process): spans do not record, rows carry no context.
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    job = Job.objects.push("record", b"x")
    assert Job.objects.get(id=job.id).trace_context is None


def test_an_unreadable_trace_context_gives_no_link_and_the_run_goes_on(spans) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", json={})
    Job.objects.filter(id=job.id).update(trace_context="not json")
    with running_worker("record", sweep=False):
        wait_until(lambda: Job.objects.get(id=job.id).status == "done", timeout=60, message="the run")
    wait_until(lambda: named(spans, "process record"), timeout=10, message="the consumer span")
    [process] = named(spans, "process record")
    assert list(process.links) == []


def test_an_oversized_trace_state_is_dropped_and_the_link_kept(spans, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from opentelemetry import propagate

    real = propagate.inject

    def inject(carrier, *args, **kwargs):  # type: ignore[no-untyped-def]
        real(carrier, *args, **kwargs)
        carrier["tracestate"] = "vendor=" + "x" * 2000

    monkeypatch.setattr(propagate, "inject", inject)
    job = Job.objects.push("record", b"x")
    stored = json.loads(Job.objects.get(id=job.id).trace_context)
    [send] = named(spans, "send record")
    assert list(stored) == ["traceparent"] and format(send.context.span_id, "016x") in stored["traceparent"]
