"""A prefetched job's lease is proven before it starts; a proof the database does not answer is tried again, and
the job never starts unproven (waiting.py). Without a database: ``extend_leases`` is replaced."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import OperationalError

from django_meepo import waiting as waiting_module
from django_meepo.holdings import Held, Holdings
from django_meepo.waiting import PROOF_AGE, Waiting


def waiting_job(stop: threading.Event | None = None) -> tuple[Waiting, Held]:
    holdings = Holdings()
    tasks: Any = {"a": SimpleNamespace(name="a", options=SimpleNamespace(lease_timeout=60))}
    waiting = Waiting(holdings, tasks, worker_id="w", using="default", max_wait=1.0, stop=stop)
    ctx = SimpleNamespace(id=7, job=SimpleNamespace(ref=(7, 2)), lease_lost=False)
    held = Held(ctx=ctx, task=tasks["a"])  # type: ignore[arg-type]
    held.proven -= 10 * PROOF_AGE  # it waited: its lease must be proven again before it starts
    holdings.add(held)
    return waiting, held


@pytest.fixture(autouse=True)
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting_module, "discard_connection", lambda using: None)


def test_a_proof_the_database_does_not_answer_is_tried_again_before_the_job_starts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[Any]] = []

    def extend_leases(refs: list[Any], **kwargs: Any) -> set[int]:
        calls.append(refs)
        if len(calls) < 3:
            raise OperationalError(2013, "Lost connection to server during query")
        return set()  # the third proof answers: the lease is still ours

    monkeypatch.setattr(waiting_module.sm, "extend_leases", extend_leases)
    waiting, held = waiting_job()
    assert waiting.start(held) is True
    assert calls == [[(7, 2)]] * 3  # started only after a proof answered


def test_a_job_whose_lease_moved_while_the_database_was_away_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[Any] = [OperationalError(2006, "MySQL server has gone away"), {7}]  # then: lost (rescued)

    def extend_leases(refs: list[Any], **kwargs: Any) -> set[int]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(waiting_module.sm, "extend_leases", extend_leases)
    monkeypatch.setattr(waiting_module, "lease_lost", lambda ctx: setattr(ctx, "lease_lost", True))
    waiting, held = waiting_job()
    assert waiting.start(held) is False
    assert answers == []


def test_a_stop_while_the_database_does_not_answer_leaves_the_job_unstarted(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    def extend_leases(refs: list[Any], **kwargs: Any) -> set[int]:
        nonlocal calls
        calls += 1
        if calls == 2:
            stop.set()  # the worker is told to stop while the database is still away
        raise OperationalError(2003, "Can't connect to MySQL server")

    stop = threading.Event()
    monkeypatch.setattr(waiting_module.sm, "extend_leases", extend_leases)
    waiting, held = waiting_job(stop)
    assert waiting.start(held) is False
    assert calls == 2
