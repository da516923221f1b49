"""Celery app of the benchmark: ``celery -A bench.apps.celery_app worker``. Results are ignored (no backend)."""

from __future__ import annotations

from celery import Celery

from bench.apps import broker_url, prefix
from bench.recorder import record

app = Celery("bench", broker=broker_url())
app.conf.update(
    task_default_queue=prefix(),
    task_ignore_result=True,
    broker_transport_options={"global_keyprefix": f"{prefix()}:"},
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop(number: int) -> None:
    record(number)
