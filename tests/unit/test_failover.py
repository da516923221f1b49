"""FailoverDispatcher with in-memory stand-ins: when it switches, what it logs, when it asks Redis again."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pytest

from django_meepo.dispatch.base import Claim, Deliver, Dispatcher, Source
from django_meepo.dispatch.database import fair_shares
from django_meepo.dispatch.failover import FailoverDispatcher
from django_meepo.exceptions import DispatchError
from django_meepo.statemachine import ClaimedJob, Dispatchable, Ref

SOURCE = Source(task="t", key_prefix="p", lease_seconds=30)


def job(n: int) -> ClaimedJob:
    return ClaimedJob(id=n, task="t", cid=2, payload=b"", failed_times=0, attempts=1, priority=0,
                      started_at=datetime(2026, 1, 1, tzinfo=UTC))


class Fake(Dispatcher):
    """Answers with ``jobs`` (or raises DispatchError while ``down``) and counts every call."""

    def __init__(self, name: str, jobs: list[ClaimedJob] | None = None) -> None:
        self.name = name
        self.jobs = jobs or []
        self.down = False
        self.calls: list[str] = []
        self.found_entries = False

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise DispatchError(f"{self.name} is down")

    def dispatch(self, items: Sequence[Dispatchable], *, prefixes: dict[str, str] | None = None) -> None:
        self._call("dispatch")

    def fetch(self, sources: Sequence[Source], count: int, *, worker: str, claim: Claim,
              deliver: Deliver, limits: Mapping[str, int] | None = None) -> bool:
        self._call("fetch")
        deliver(list(self.jobs))
        return self.found_entries

    def wait(self, sources: Sequence[Source], timeout: float) -> None:
        self._call("wait")

    def missing(self, task: str, key_prefix: str, refs: Sequence[Ref]) -> list[Ref]:
        self._call("missing")
        return list(refs)

    def length(self, task: str, key_prefix: str) -> int:
        self._call("length")
        return 7

    def heartbeat(self, worker: str) -> None:
        self._call("heartbeat")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def redis() -> Fake:
    return Fake("redis", [job(1)])


@pytest.fixture
def table() -> Fake:
    return Fake("database", [job(2)])


@pytest.fixture
def failover(redis: Fake, table: Fake, clock: Clock) -> FailoverDispatcher:
    return FailoverDispatcher(redis, table, probe_interval=1.0, drain_seconds=10.0, clock=clock)


def fetch(d: Dispatcher) -> list[int]:
    got: list[ClaimedJob] = []
    d.found_entries = d.fetch([SOURCE], 10, worker="w1", claim=lambda source, refs: [], deliver=got.extend)  # type: ignore[attr-defined]
    return [j.id for j in got]


def switches(caplog: pytest.LogCaptureFixture, words: str) -> int:
    return sum(words in r.getMessage() for r in caplog.records)


def test_while_redis_answers_the_table_is_left_alone(failover: FailoverDispatcher, table: Fake) -> None:
    assert [fetch(failover) for _ in range(3)] == [[1], [1], [1]]
    failover.wait([SOURCE], 1.0)
    failover.heartbeat("w1")
    assert table.calls == []


def test_redis_down_switches_to_the_table_and_says_so_once(failover: FailoverDispatcher, redis: Fake,
                                                           clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    redis.down = True
    with caplog.at_level(logging.WARNING, logger="django_meepo"):
        results = []
        for _ in range(50):  # many fetches, waits and heartbeats within one outage
            results.append(fetch(failover))
            failover.wait([SOURCE], 1.0)
            failover.heartbeat("w1")
            clock.now += 0.3
    assert results == [[2]] * 50
    assert failover.using_fallback
    assert switches(caplog, "claiming jobs straight from the database") == 1
    assert "w1" in caplog.records[0].getMessage()


def test_redis_is_asked_again_once_per_probe_interval(failover: FailoverDispatcher, redis: Fake,
                                                      clock: Clock) -> None:
    redis.down = True
    fetch(failover)
    redis.calls.clear()
    for _ in range(10):  # 1 s at 0.1 s a step: one probe
        clock.now += 0.1
        fetch(failover)
    assert redis.calls.count("heartbeat") == 1
    assert "fetch" not in redis.calls


def test_redis_back_switches_back_and_says_so_once(failover: FailoverDispatcher, redis: Fake, clock: Clock,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    redis.down = True
    fetch(failover)
    redis.down = False
    with caplog.at_level(logging.WARNING, logger="django_meepo"):
        clock.now += 1.5
        results = [fetch(failover) for _ in range(5)]
    assert results == [[1]] * 5
    assert not failover.using_fallback
    assert switches(caplog, "Redis answers again") == 1


def test_after_switching_back_the_table_is_drained_while_redis_has_nothing(
        failover: FailoverDispatcher, redis: Fake, table: Fake, clock: Clock) -> None:
    redis.down = True
    fetch(failover)
    redis.down, redis.jobs = False, []
    clock.now += 1.5
    assert fetch(failover) == [2], "what became due during the outage is taken from the table meanwhile"
    clock.now += 11
    table.calls.clear()
    assert fetch(failover) == []
    assert table.calls == [], "after the drain window, Redis alone"


def test_found_entries_comes_from_the_path_taken(failover: FailoverDispatcher, redis: Fake) -> None:
    redis.jobs, redis.found_entries = [], True  # Redis popped only stale entries: fetch again at once
    assert fetch(failover) == [] and failover.found_entries
    redis.down = True
    assert fetch(failover) == [2] and not failover.found_entries


def test_a_failed_wait_or_heartbeat_switches_too(failover: FailoverDispatcher, redis: Fake, table: Fake) -> None:
    redis.down = True
    failover.wait([SOURCE], 1.0)
    assert failover.using_fallback and table.calls == ["wait"]


def test_dispatch_raises_once_then_skips_redis_until_the_next_probe(failover: FailoverDispatcher, redis: Fake,
                                                                    clock: Clock) -> None:
    item = [Dispatchable("t", 1, 1, 0)]
    redis.down = True
    with pytest.raises(DispatchError):
        failover.dispatch(item)  # the caller (push) logs it; the row is committed
    redis.calls.clear()
    for _ in range(5):
        failover.dispatch(item)  # skipped at once: no timeout per push while Redis is down
    assert redis.calls == []
    redis.down = False
    clock.now += 1.5
    failover.dispatch(item)
    assert redis.calls == ["dispatch"] and not failover.using_fallback


def test_the_sweeper_hears_of_an_outage_at_once(failover: FailoverDispatcher, redis: Fake, clock: Clock) -> None:
    redis.down = True
    with pytest.raises(DispatchError):
        failover.missing("t", "p", [Ref(1, 1)])
    redis.calls.clear()
    with pytest.raises(DispatchError):
        failover.length("t", "p")
    assert redis.calls == [], "between probes Redis is not asked"
    redis.down = False
    clock.now += 1.5
    assert failover.length("t", "p") == 7


def test_fair_shares_split_a_fetch_over_tasks() -> None:
    a, b, c = (Source(task=n, key_prefix="p", lease_seconds=1) for n in "abc")
    assert fair_shares([a, b, c], 7, 0) == [(a, 2), (b, 2), (c, 2)]
    assert fair_shares([a, b, c], 2, 1) == [(b, 1), (c, 1)]
    assert fair_shares([a], 5, 3) == [(a, 5)]
    assert fair_shares([], 5, 0) == []


def test_a_dispatch_that_fails_switches_the_fetcher_at_once(failover: FailoverDispatcher, redis: Fake,
                                                           table: Fake, caplog: pytest.LogCaptureFixture) -> None:
    """One dispatcher per process: the outbox's failed dispatch opens the breaker the worker fetches through, so
    its next fetch claims from the table without waiting on Redis itself; the switch is said once, as the
    worker's."""
    assert fetch(failover) == [1]  # the worker fetches through this dispatcher
    redis.down = True
    redis.calls.clear()
    with caplog.at_level(logging.WARNING, logger="django_meepo"):
        with pytest.raises(DispatchError):
            failover.dispatch([Dispatchable("t", 5, 1, 0)])
        assert fetch(failover) == [2]
        failover.wait([SOURCE], 1.0)
    assert redis.calls == ["dispatch"], "Redis was not asked again before the next probe"
    assert switches(caplog, "worker w1: Redis unavailable") == 1


def test_without_a_worker_the_switch_is_said_as_the_producers(failover: FailoverDispatcher, redis: Fake,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    redis.down = True
    with caplog.at_level(logging.INFO, logger="django_meepo"), pytest.raises(DispatchError):
        failover.dispatch([Dispatchable("t", 5, 1, 0)])
    assert switches(caplog, "dispatches are skipped until it answers again") == 1
    assert switches(caplog, "worker") == 1  # "workers claim from the database": no worker named
