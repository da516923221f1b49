"""The database dispatcher's fetch, closer up: it uses SKIP LOCKED, a row locked elsewhere does not block it, and a
claim whose answer was lost still returns exactly the jobs it won (the ``held_by`` read-back)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from django.db import OperationalError, connections, transaction
from django.test.utils import CaptureQueriesContext

from django_meepo import Job
from django_meepo import statemachine as sm
from django_meepo.db import Sql, close_thread_connections, job_table
from django_meepo.dispatch.database import DatabaseDispatcher
from django_meepo.registry import get_task
from django_meepo.sweeper import source_of
from tests.support.fetching import fetch_claimed

pytestmark = pytest.mark.django_db(transaction=True)
DB = "default"
WORKER = "db-fetcher"


def fetch(d: DatabaseDispatcher, count: int, worker: str = WORKER) -> list[sm.ClaimedJob]:
    return fetch_claimed(d, [source_of(get_task("record"))], count, worker=worker, using=DB)


def require_skip_locked() -> None:
    """MariaDB 10.6+, MySQL 8.0+ and PostgreSQL lock rows and skip locked ones; SQLite has no row locks."""
    conn = connections[DB]
    if conn.vendor == "sqlite":
        pytest.skip("SQLite has no row locks: the database dispatcher relies on conditional claims there")
    if conn.vendor == "mysql" and conn.mysql_is_mariadb and conn.mysql_version < (10, 6):
        pytest.skip("MariaDB before 10.6 has no SKIP LOCKED")
    assert conn.features.has_select_for_update_skip_locked, f"{conn.vendor} should support SKIP LOCKED"


# ----------------------------------------------------------------------------------------------- SKIP LOCKED

def test_the_fetch_selects_its_candidates_for_update_skip_locked() -> None:
    require_skip_locked()
    ids = [j.id for j in Job.objects.push_many("record", json=[{} for _ in range(3)])]
    with CaptureQueriesContext(connections[DB]) as queries:
        claimed = fetch(DatabaseDispatcher(using=DB), 10)
    assert [c.id for c in claimed] == ids
    selects = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    locking = [s for s in selects if "FOR UPDATE SKIP LOCKED" in s.upper()]
    assert locking, f"no SELECT … FOR UPDATE SKIP LOCKED among the fetch's queries: {selects}"
    assert all("ORDER BY PRIORITY DESC" in s.upper() for s in locking), locking


@pytest.fixture
def short_lock_waits() -> Iterator[None]:
    """A fetch that waits for a row lock fails after a second instead of the default 50 s (MariaDB) or never
    (PostgreSQL): a fetch that blocks then returns nothing or raises, and the test fails on what it returned."""
    require_skip_locked()
    conn = connections[DB]
    with conn.cursor() as cursor:
        if conn.vendor == "mysql":
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
        else:
            cursor.execute("SET lock_timeout = '1s'")
    try:
        yield
    finally:
        with conn.cursor() as cursor:
            if conn.vendor == "mysql":
                cursor.execute("SET SESSION innodb_lock_wait_timeout = DEFAULT")
            else:
                cursor.execute("RESET lock_timeout")


class RowLocker:
    """Holds ``SELECT … FOR UPDATE`` on one row in an open transaction on a connection of its own (a thread)."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.locked = threading.Event()
        self.release = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._hold, name="row-locker", daemon=True)

    def _hold(self) -> None:
        try:
            sql = Sql(DB, job_table())
            with transaction.atomic(using=DB):
                rows = sql.fetchall(f"SELECT id FROM {sql.table} WHERE id = %s FOR UPDATE", [self.job_id])
                assert rows == [(self.job_id,)]
                self.locked.set()
                self.release.wait(60)
        except BaseException as exc:  # reported by the test thread
            self.errors.append(exc)
        finally:
            self.locked.set()
            close_thread_connections()

    def __enter__(self) -> RowLocker:
        self.thread.start()
        assert self.locked.wait(30), "the locking thread did not start"
        assert not self.errors, self.errors
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the locking thread did not finish"
        assert not self.errors, self.errors


def test_a_row_locked_by_another_connection_is_skipped_not_waited_for(short_lock_waits: None) -> None:
    top = Job.objects.push("record", json={}, priority=90)  # the fetch's first candidate, were it not locked
    rest = [j.id for j in Job.objects.push_many("record", json=[{} for _ in range(4)])]
    dispatcher = DatabaseDispatcher(using=DB)
    with RowLocker(top.id):
        claimed = fetch(dispatcher, 10)
        assert [c.id for c in claimed] == rest, "the fetch skipped the locked row and took the others"
        assert Job.objects.get(id=top.id).status == "todo"
    [last] = fetch(dispatcher, 10)  # the lock is gone: the row is claimed now, once
    assert (last.id, last.cid) == (top.id, 2)
    assert set(Job.objects.values_list("status", flat=True)) == {"doing"}


# ------------------------------------------------------------------------------- a lost answer during a fetch

def lose_answer_to_the_commit(monkeypatch: pytest.MonkeyPatch, *, committed: bool) -> list[int]:
    """The next COMMIT on this thread's connection raises as if the connection died before the answer came back;
    ``committed`` says whether the server had committed. Returns a one-item list counting the faults injected."""
    conn = connections[DB]
    original = conn._commit
    faults = [0]

    def commit() -> None:
        if faults[0] == 0:
            faults[0] += 1
            if committed:
                original()
            else:
                conn._rollback()
            raise OperationalError(2013, "Lost connection to server during query")
        original()

    monkeypatch.setattr(conn, "_commit", commit)
    return faults


def lose_answer_to_the_claim(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Without SKIP LOCKED the claim runs in autocommit: its UPDATE commits, then its answer is lost."""
    original = Sql.execute
    faults = [0]

    def execute(sql: Sql, statement: str, params: object) -> int:
        result = original(sql, statement, params)
        if faults[0] == 0 and statement.startswith("UPDATE"):
            faults[0] += 1
            raise OperationalError(2013, "Lost connection to server during query")
        return result

    monkeypatch.setattr(Sql, "execute", execute)
    return faults


@pytest.mark.parametrize("committed", [True, False], ids=["commit-took-effect", "commit-lost"])
def test_a_fetch_whose_answer_was_lost_returns_exactly_the_jobs_it_won(monkeypatch,  # type: ignore[no-untyped-def]
                                                                     committed) -> None:
    pushed = [(Job.objects.push("record", json={}, priority=p).id, p) for p in (0, 20, -10, 60, 0, 20, 5, -70)]
    by_priority = [i for i, _ in sorted(pushed, key=lambda item: (-item[1], item[0]))]
    dispatcher = DatabaseDispatcher(using=DB)
    inject: Callable[[], list[int]]
    if connections[DB].features.has_select_for_update_skip_locked:
        # The SELECT … SKIP LOCKED and the claim share a transaction: its COMMIT is where an answer can be lost
        # while the claim did (or did not) take effect; the fetch reads back what this worker holds (held_by).
        inject = lambda: lose_answer_to_the_commit(monkeypatch, committed=committed)  # noqa: E731
    else:
        if not committed:
            pytest.skip("in autocommit a statement's change cannot be rolled back after it ran")
        inject = lambda: lose_answer_to_the_claim(monkeypatch)  # noqa: E731
    faults = inject()
    first = fetch(dispatcher, 5)
    assert faults == [1], "the fault was injected"
    assert [c.id for c in first] == by_priority[:5], "the jobs won, in priority order, neither lost nor doubled"
    assert all(c.cid == 2 and c.attempts == 1 for c in first)
    rows = {j.id: j for j in Job.objects.filter(id__in=[c.id for c in first])}
    assert {(r.status, r.cid, r.worker, r.attempts) for r in rows.values()} == {("doing", 2, WORKER, 1)}
    second = fetch(dispatcher, 10, worker="another-fetcher")
    assert [c.id for c in second] == by_priority[5:], "the rest, and none of the first batch again"
    assert fetch(dispatcher, 10) == []
    jobs = Job.objects.filter(task="record")
    assert set(jobs.values_list("status", "cid", "attempts")) == {("doing", 2, 1)}, "each job claimed once"
    assert jobs.filter(worker=WORKER).count() == 5
