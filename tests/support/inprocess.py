"""A Worker running in a thread of the test process (for tests that need no signals or separate processes)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django_meepo.registry import get_task
from django_meepo.worker import Worker


@contextmanager
def running_worker(*tasks: str, **kwargs: Any) -> Iterator[Worker]:
    kwargs.setdefault("grace", 10)
    worker = Worker([get_task(t) for t in tasks], **kwargs)
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(worker.run()), name="test-worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.request_stop()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the worker did not stop within 60 s"
