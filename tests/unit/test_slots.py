"""Per-task run slots (slots.py) and the per-task hostage clock (waiting.py), without a database."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from django_meepo.holdings import Held, Holdings
from django_meepo.slots import Slots
from django_meepo.waiting import Waiting


def held(task: str, n: int) -> Any:
    return SimpleNamespace(task=SimpleNamespace(name=task), n=n)


def test_a_task_at_its_limit_waits_while_another_task_runs() -> None:
    slots = Slots({"a": 1, "b": 2})
    for i in range(3):
        slots.put(held("a", i))
        slots.put(held("b", i))
    taken = [slots.take() for _ in range(3)]
    assert sorted((h.task.name, h.n) for h in taken) == [("a", 0), ("b", 0), ("b", 1)]
    assert slots.at_limit("a") and slots.at_limit("b")
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(slots.take()))
    thread.start()
    thread.join(0.2)
    assert thread.is_alive() and not got  # both tasks at their limit: nothing may start
    slots.done("a")
    thread.join(5)
    assert [(h.task.name, h.n) for h in got] == [("a", 1)]  # the freed slot was a's: a's next job takes it
    assert slots.running("a") == 1 and slots.running("b") == 2


def test_tasks_are_taken_in_turn() -> None:
    slots = Slots({"a": 10, "b": 10})
    for i in range(4):
        slots.put(held("a", i))
    slots.put(held("b", 0))
    order = [slots.take().task.name for _ in range(3)]  # type: ignore[union-attr]
    assert order.count("b") == 1 and order.index("b") <= 1  # b's one job does not wait behind a's backlog


def test_close_wakes_every_taker_with_none() -> None:
    slots = Slots({"a": 1})
    got: list[Any] = []
    threads = [threading.Thread(target=lambda: got.append(slots.take())) for _ in range(3)]
    for t in threads:
        t.start()
    slots.close()
    for t in threads:
        t.join(5)
    assert got == [None, None, None]


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one run slot"):
        Slots({"a": 0})


def test_a_hang_in_one_task_hands_back_only_that_tasks_waiting_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    holdings = Holdings()
    at_limit = {"a": True, "b": False}
    tasks: Any = {"a": SimpleNamespace(name="a"), "b": SimpleNamespace(name="b")}
    waiting = Waiting(holdings, tasks, worker_id="w", using="default", max_wait=0.1, at_limit=at_limit.__getitem__)
    released: list[tuple[str, list[Any]]] = []
    monkeypatch.setattr("django_meepo.waiting.sm.release",
                        lambda name, jobs, **kw: released.append((name, jobs)) or jobs)
    now = [1000.0]
    monkeypatch.setattr("django_meepo.waiting.time.monotonic", lambda: now[0])
    waiting._last_finish = 1000.0
    waiting._task_finish = {"a": 1000.0, "b": 1000.0}
    for i, name in enumerate(["a", "b"], start=1):
        ctx = SimpleNamespace(id=i, job=f"job-{name}")
        holdings.add(Held(ctx=ctx, task=tasks[name], queued_at=1000.0))  # type: ignore[arg-type]
    now[0] = 1000.0 + waiting.hostage_after + 1
    waiting.finished("b")  # b's jobs keep finishing; a's one running job hangs
    assert waiting.release_hostages() == {"a"}
    assert released == [("a", ["job-a"])]
    assert [h.task.name for h in holdings.jobs.values()] == ["b"]
