"""``MEEPO["POLL_INTERVAL"]`` bounds how often an idle worker polls the table, also above one second.

The worker's loop wakes at least once a second (to heartbeat, check limits and hand back jobs) and calls the
dispatcher's ``fetch`` each time. The database dispatcher must not turn each of those wake-ups into a poll: a
POLL_INTERVAL of 5 s means one query per 5 s on an idle queue, and a job pushed meanwhile is found at the next
poll (or at once with LISTEN/NOTIFY on PostgreSQL).
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any

import pytest

from django_meepo import Job
from django_meepo.dispatch import database
from django_meepo.dispatch.database import DatabaseDispatcher
from django_meepo.registry import get_task
from django_meepo.sweeper import source_of
from tests.support.fetching import fetch_claimed

pytestmark = pytest.mark.django_db(transaction=True)


class FakeTime:
    """A monotonic clock that only moves when the dispatcher sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


def idle_worker(monkeypatch: pytest.MonkeyPatch, poll_interval: float, seconds: float) -> tuple[int, FakeTime,
                                                                                              DatabaseDispatcher]:
    """Run a worker's loop (fetch; on nothing, wait up to 1 s) for ``seconds`` of fake time; count the polls."""
    clock = FakeTime()
    monkeypatch.setattr(database, "time", types.SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep))
    polls = 0
    select_due = database.select_due

    def counting(*args: Any, **kwargs: Any) -> Sequence[Any]:
        nonlocal polls
        polls += 1
        return select_due(*args, **kwargs)

    monkeypatch.setattr(database, "select_due", counting)
    d = DatabaseDispatcher(using="default", poll_interval=poll_interval, sleep=clock.sleep)
    sources = [source_of(get_task("record"))]
    start = clock.now
    while clock.now - start < seconds:
        if not fetch_claimed(d, sources, 10, worker="idle", using="default"):
            d.wait(sources, timeout=1.0)
    return polls, clock, d


def test_an_idle_worker_polls_at_most_once_per_poll_interval_above_one_second(
        monkeypatch: pytest.MonkeyPatch) -> None:
    polls, _, _ = idle_worker(monkeypatch, poll_interval=5.0, seconds=60)
    # The delay grows from 0.02 s to 5 s (9 short polls), then one poll per 5 s: about 21 in a minute. Polling
    # once per wake-up of the loop would be about 60.
    assert 15 <= polls <= 25, polls


def test_the_short_default_still_polls_often(monkeypatch: pytest.MonkeyPatch) -> None:
    polls, _, _ = idle_worker(monkeypatch, poll_interval=0.5, seconds=10)
    assert 20 <= polls <= 30, polls


def test_a_job_pushed_to_an_idle_queue_is_found_within_the_poll_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    _, clock, d = idle_worker(monkeypatch, poll_interval=5.0, seconds=30)  # the delay is at its 5 s ceiling
    job = Job.objects.push("record", json={})
    sources = [source_of(get_task("record"))]
    pushed_at = clock.now
    found: list[int] = []
    while not found and clock.now - pushed_at < 10:
        found = [c.id for c in fetch_claimed(d, sources, 10, worker="idle", using="default")]
        if not found:
            d.wait(sources, timeout=1.0)
    assert found == [job.id]
    assert clock.now - pushed_at <= 5.0 + 1e-9
