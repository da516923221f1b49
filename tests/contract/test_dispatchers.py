"""The dispatcher contract: one set of tests, run unchanged against every dispatcher, on every database.

``redis`` is the Redis dispatcher alone, ``database`` the database dispatcher (``MEEPO["DISPATCH"] =
"database"``), ``failover`` what ``MEEPO["DISPATCH"] = "redis"`` gives workers (Redis, falling back to the
database). ``scripts/test.sh`` runs this module on MariaDB, PostgreSQL and SQLite; each test runs for tasks whose
jobs are in the shared table and for tasks with a table of their own (``t``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from django_meepo import operators, outbox
from django_meepo import statemachine as sm
from django_meepo.clock import db_now
from django_meepo.db import close_thread_connections
from django_meepo.dispatch import Dispatcher, Source, database_dispatcher, new_dispatcher, redis_dispatcher
from django_meepo.registry import get_task
from django_meepo.sweeper import source_of
from tests.support.fetching import fetch_claimed
from tests.support.tables import JobsTable

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"
WORKER = "contract-worker"


class Kind:
    def __init__(self, name: str) -> None:
        self.name = name

    def make(self) -> Dispatcher:
        return {"redis": redis_dispatcher, "database": database_dispatcher, "failover": new_dispatcher}[self.name]()


@pytest.fixture(params=["redis", "database", "failover"])
def kind(request: pytest.FixtureRequest, key_prefix: str) -> Iterator[Kind]:
    dispatch = "database" if request.param == "database" else "redis"
    with override_settings(MEEPO={**settings.MEEPO, "DISPATCH": dispatch}):  # pushes dispatch the same way
        yield Kind(request.param)


@pytest.fixture
def dispatcher(kind: Kind) -> Iterator[Dispatcher]:
    d = kind.make()
    yield d
    d.close()


def src(task: str) -> Source:
    return source_of(get_task(task))


@pytest.fixture
def t(jobs_table: JobsTable) -> JobsTable:
    """Every test runs on the shared job table and on a table of its own (tests/support/tables.py)."""
    return jobs_table


def fetch(t: JobsTable, d: Dispatcher, count: int = 100, *tasks: str, worker: str = WORKER) -> list[sm.ClaimedJob]:
    return fetch_claimed(d, [src(name) for name in tasks or (t.record,)], count, worker=worker, using=DB)


def test_a_pushed_job_is_claimed_once(t: JobsTable, dispatcher: Dispatcher) -> None:
    before = db_now(DB)
    job = t.model.objects.push(t.record, json={"n": 1})
    [claimed] = fetch(t, dispatcher, 10)
    assert (claimed.id, claimed.task, claimed.cid, claimed.attempts) == (job.id, t.record, 2, 1)
    assert json.loads(claimed.payload) == {"n": 1}
    row = t.model.objects.get(id=job.id)
    assert (row.status, row.cid, row.worker, row.attempts) == ("doing", 2, WORKER, 1)
    lease = get_task(t.record).options.lease_timeout
    assert before + timedelta(seconds=lease) <= row.lease_until <= db_now(DB) + timedelta(seconds=lease)
    assert fetch(t, dispatcher, 10) == []


def test_a_fetch_claims_at_most_count(t: JobsTable, dispatcher: Dispatcher) -> None:
    jobs = t.model.objects.push_many(t.record, json=[{} for _ in range(10)])
    first = fetch(t, dispatcher, 3)
    rest = fetch(t, dispatcher, 100)
    assert len(first) == 3 and len(rest) == 7
    assert sorted(j.id for j in first + rest) == sorted(j.id for j in jobs)


def test_higher_priority_is_claimed_first(t: JobsTable, dispatcher: Dispatcher) -> None:
    for priority in (-60, 0, 10, 80):
        t.model.objects.push(t.record, json={}, priority=priority)
    order = [fetch(t, dispatcher, 1)[0].priority for _ in range(4)]
    assert order == [80, 10, 0, -60]


def test_one_fetch_returns_its_batch_highest_priority_first(t: JobsTable, dispatcher: Dispatcher) -> None:
    # Pushed out of priority order: every dispatcher promises priority high first, then in the order the jobs
    # became due (here: push order).
    pushed = [(t.model.objects.push(t.record, json={}, priority=p).id, p)
              for p in (0, -60, 80, 10, 80, 0, -60, 10, 100, 49, -1, -100, 1, 50)]
    expected = sorted(pushed, key=lambda item: (-item[1], item[0]))
    claimed = fetch(t, dispatcher, len(pushed))
    assert [(c.id, c.priority) for c in claimed] == expected
    assert fetch(t, dispatcher, 8) == []


def test_seven_close_priorities_are_claimed_highest_first(t: JobsTable, dispatcher: Dispatcher) -> None:
    for priority in (10, 20, 30, 40, 49, 50, 100):
        t.model.objects.push(t.record, json={}, priority=priority)
    order = [fetch(t, dispatcher, 1)[0].priority for _ in range(7)]
    assert order == [100, 50, 49, 40, 30, 20, 10]
    assert fetch(t, dispatcher, 1) == []


def test_within_one_priority_other_than_the_default_jobs_are_claimed_first_in_first_out(t: JobsTable,
        dispatcher: Dispatcher) -> None:
    ids = [t.model.objects.push(t.record, json={}, priority=p).id for p in (7, 7, -7, 7, -7)]
    assert [fetch(t, dispatcher, 1)[0].id for _ in range(5)] == [ids[0], ids[1], ids[3], ids[2], ids[4]]


def test_within_a_priority_jobs_are_claimed_in_the_order_they_became_due(t: JobsTable, dispatcher: Dispatcher) -> None:
    ids = [t.model.objects.push(t.record, json={}).id for _ in range(5)]
    assert [fetch(t, dispatcher, 1)[0].id for _ in range(5)] == ids


def test_a_job_is_not_claimed_before_it_is_due(t: JobsTable, dispatcher: Dispatcher, key_prefix: str) -> None:
    job = t.model.objects.push(t.record, json={}, delay=60)
    assert fetch(t, dispatcher) == []
    early = sm.Dispatchable(t.record, job.id, 1, 0)
    dispatcher.dispatch([early])  # an entry that came early is not claimed either
    assert fetch(t, dispatcher) == []
    t.model.objects.filter(id=job.id).update(due_at=timezone.now() - timedelta(seconds=1))  # its time has come
    if dispatcher.redispatches:
        assert dispatcher.missing(t.record, key_prefix, [sm.Ref(job.id, 1)]) == [sm.Ref(job.id, 1)]
    dispatcher.dispatch([early])  # what the sweeper does for a job that became due
    assert [c.id for c in fetch(t, dispatcher)] == [job.id]


def test_a_stale_entry_is_dropped(t: JobsTable, dispatcher: Dispatcher, key_prefix: str) -> None:
    job = t.model.objects.push(t.record, json={})  # dispatched at cid 1
    repushed = operators.repush(job.id, using=DB, task=t.record)  # cid 2: the first entry is stale now
    item = repushed.dispatchable(db_now(DB))  # due_at is on the database's clock, not this process's
    assert item is not None
    dispatcher.dispatch([item])
    claimed = fetch(t, dispatcher, 10)
    assert [(c.id, c.cid) for c in claimed] == [(job.id, 3)]
    assert fetch(t, dispatcher, 10) == []
    assert dispatcher.length(t.record, key_prefix) == 0


def test_a_job_claimed_elsewhere_is_not_claimed_again(t: JobsTable, dispatcher: Dispatcher) -> None:
    job = t.model.objects.push(t.record, json={})
    sm.claim(t.record, [sm.Ref(job.id, 1)], worker="someone-else", lease_seconds=30, using=DB)
    assert fetch(t, dispatcher, 10) == []
    assert t.model.objects.get(id=job.id).worker == "someone-else"


def test_only_the_tasks_asked_for_are_claimed(t: JobsTable, dispatcher: Dispatcher) -> None:
    job = t.model.objects.push(t.other, json={})
    assert fetch(t, dispatcher, 10, t.record) == []
    assert [c.id for c in fetch(t, dispatcher, 10, t.other)] == [job.id]


def test_a_backlog_on_one_task_does_not_starve_another(t: JobsTable, dispatcher: Dispatcher) -> None:
    t.model.objects.push_many(t.record, json=[{} for _ in range(20)])
    t.model.objects.push_many(t.other, json=[{} for _ in range(2)])
    claimed = fetch(t, dispatcher, 4, t.record, t.other)
    assert len(claimed) == 4
    assert {c.task for c in claimed} == {t.record, t.other}


def test_length_counts_what_waits(t: JobsTable, dispatcher: Dispatcher, key_prefix: str) -> None:
    t.model.objects.push_many(t.record, json=[{} for _ in range(5)])
    t.model.objects.push(t.record, json={}, delay=60)
    outbox.flush()  # the dispatch after the commit goes out from the outbox's thread
    assert dispatcher.length(t.record, key_prefix) == 5
    fetch(t, dispatcher, 2)
    assert dispatcher.length(t.record, key_prefix) == 3
    assert dispatcher.length(t.other, key_prefix) == 0


def test_missing_names_what_the_dispatcher_lacks(t: JobsTable, dispatcher: Dispatcher, key_prefix: str) -> None:
    dispatched = [sm.Ref(j.id, 1) for j in t.model.objects.push_many(t.record, json=[{} for _ in range(3)])]
    outbox.flush()
    assert dispatcher.missing(t.record, key_prefix, dispatched) == []
    never = t.model.objects.push(t.record, json={}, delay=60)  # not dispatched: not due
    lacking = [sm.Ref(never.id, 1), sm.Ref(dispatched[0].id, 7)]
    expected = lacking if dispatcher.redispatches else []  # the table cannot lack anything
    assert dispatcher.missing(t.record, key_prefix, lacking) == expected


def test_two_fetchers_never_claim_the_same_job(t: JobsTable, kind: Kind) -> None:
    ids = {j.id for j in t.model.objects.push_many(t.record, json=[{} for _ in range(300)])}
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def consume(name: str) -> None:
        d = kind.make()
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and len(claimed["a"]) + len(claimed["b"]) < len(ids):
                claimed[name] += [c.id for c in fetch(t, d, 7, worker=f"fetcher-{name}")]
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            d.close()
            close_thread_connections()

    threads = [threading.Thread(target=consume, args=(n,)) for n in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors
    every = claimed["a"] + claimed["b"]
    assert len(every) == len(set(every)) == len(ids), "every job claimed exactly once"
    assert set(every) == ids
    assert not set(claimed["a"]) & set(claimed["b"])


def test_wait_returns_within_its_timeout(t: JobsTable, dispatcher: Dispatcher) -> None:
    started = time.monotonic()
    dispatcher.wait([src(t.record)], 0.2)
    assert time.monotonic() - started < 15  # generous: two shared cores


def test_the_worker_hooks_keep_their_promises(t: JobsTable, dispatcher: Dispatcher) -> None:
    dispatcher.heartbeat(WORKER)
    assert dispatcher.recover([src(t.record)]) == 0, "nothing was popped by a dead worker"
    assert isinstance(dispatcher.lost_everything(), bool)
    dispatcher.worker_stopped(WORKER)
    job = t.model.objects.push(t.record, json={})
    assert [c.id for c in fetch(t, dispatcher)] == [job.id], "the hooks did not disturb fetching"


def test_a_fetch_takes_no_more_of_a_task_than_its_limit(t: JobsTable, dispatcher: Dispatcher) -> None:
    # A worker's per-task room (slots.py): 'record' may take 2, 'other' the rest of the count.
    t.model.objects.push_many(t.record, json=[{} for _ in range(10)])
    t.model.objects.push_many(t.other, json=[{} for _ in range(10)])
    sources = [src(t.record), src(t.other)]
    got = fetch_claimed(dispatcher, sources, 8, worker=WORKER, using=DB, limits={t.record: 2, t.other: 8})
    by_task = {name: sum(1 for j in got if j.task == name) for name in (t.record, t.other)}
    assert by_task == {t.record: 2, t.other: 6}
    got = fetch_claimed(dispatcher, sources, 8, worker=WORKER, using=DB, limits={t.record: 0, t.other: 1})
    assert [j.task for j in got] == [t.other]
    rest = fetch_claimed(dispatcher, sources, 100, worker=WORKER, using=DB)
    assert len(rest) == 20 - 8 - 1  # nothing left behind by the limits
