"""Fixtures of the Tasks backend's tests: an in-process worker (its signals reach this process), the backend."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from django_meepo.registry import get_task
from django_meepo.tasks.compat import TaskResult, task_backends
from django_meepo.worker import Worker
from tests.support.services import wait_until


@pytest.fixture
def backend() -> Any:
    return task_backends["default"]


@pytest.fixture
def run_worker(transactional_db: None) -> Iterator[Callable[..., Worker]]:
    """Start ``Worker(queues)`` on a thread of this process (with its sweeper); stopped after the test."""
    started: list[tuple[Worker, threading.Thread]] = []

    def start(*queues: str, parallel: int | None = None) -> Worker:
        worker = Worker([get_task(q) for q in queues], parallel=parallel, grace=10)
        thread = threading.Thread(target=worker.run, name="test-worker", daemon=True)
        thread.start()
        started.append((worker, thread))
        return worker

    yield start
    for worker, thread in started:
        worker.request_stop()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the in-process worker did not stop"


def finished(backend: Any, result_id: str, timeout: float = 30.0) -> TaskResult:
    """Wait until the task result is SUCCESSFUL or FAILED (generous timeouts: the machine is shared)."""
    return wait_until(lambda: (r := backend.get_result(result_id)).is_finished and r, timeout=timeout,
                      interval=0.1, message=f"task result {result_id} to finish")


@dataclass
class SignalLog:
    """Every task signal received: (signal name, sender, result id, status)."""

    events: list[tuple[str, Any, str, str]] = field(default_factory=list)

    def of(self, result_id: str) -> list[tuple[str, Any, str]]:
        return [(name, sender, status) for name, sender, rid, status in list(self.events) if rid == result_id]

    def finished(self, result_id: str, timeout: float = 30.0) -> list[tuple[str, Any, str]]:
        """The signals of ``result_id`` once its task_finished arrived: the worker sends it after its commit, so
        a result read as finished may not have been announced yet."""
        wait_until(lambda: any(name == "finished" for name, _, _ in self.of(result_id)), timeout=timeout,
                   interval=0.05, message=f"task_finished of {result_id}")
        return self.of(result_id)


@pytest.fixture
def signal_log() -> Iterator[SignalLog]:
    from django_meepo.tasks.compat import task_enqueued, task_finished, task_started

    log = SignalLog()
    receivers = []
    for name, signal in (("enqueued", task_enqueued), ("started", task_started), ("finished", task_finished)):
        def receiver(sender: Any, task_result: TaskResult, _name: str = name, **kwargs: Any) -> None:
            log.events.append((_name, sender, task_result.id, str(task_result.status)))

        signal.connect(receiver, weak=False)
        receivers.append((signal, receiver))
    yield log
    for signal, receiver in receivers:
        signal.disconnect(receiver)
