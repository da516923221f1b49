"""Issue 9's loss windows 4 and 8: statements of the state machine whose answer, or whose connection, was lost.

The fault is injected at the one place the state machine executes its statements (``db.Sql.execute``), on the
real database; everything checked is the job's row afterwards.

* Window 4: the read timeout fires while the first copy of a statement still waits on a row lock. The check
  finds nothing, the statement runs again; the first copy then commits and the re-run matches 0 rows. The change
  was written: the verb must say so (claim returns the job, repush and operator_commit do not raise).
* Window 8: a lease renewal whose connection died before the statement reached the server must not be reported
  renewed unless ``lease_until`` really moved.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.utils import timezone

from django_meepo import Job, operators
from django_meepo import statemachine as sm
from django_meepo.db import Sql
from django_meepo.exceptions import CommitConflict
from django_meepo.states import Ref
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True)]

# After the injected lost answer, the row lock is held this long more: the caller's check (a read on a new
# connection, a few tens of milliseconds later) runs while the first copy still waits, as in the issue.
RELEASE_AFTER = 0.8


def lost_connection() -> OperationalError:
    return OperationalError(2013, "Lost connection to server during query (injected by the test)")


def is_update(sql: str) -> bool:
    return sql.lstrip().upper().startswith("UPDATE")


def in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on a thread of its own, hence on a database connection of its own (closed afterwards)."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=30)
    if errors:
        raise errors[0]
    return out[0]


def backend_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()" if connection.vendor == "postgresql" else "SELECT CONNECTION_ID()")
        return int(cursor.fetchone()[0])


def waits_on_a_lock(session: int) -> bool:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [session])
            row = cursor.fetchone()
            return bool(row and row[0] == "Lock")
        cursor.execute("SELECT trx_state FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = %s",
                       [session])
        row = cursor.fetchone()
        return bool(row and row[0] == "LOCK WAIT")


@dataclass
class FirstCopy:
    """What the first copy of the statement did, on its own connection."""

    sql: str = ""
    rows: list[int] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)


@contextmanager
def answer_lost_while_waiting_on_a_row_lock(job_id: int) -> Iterator[FirstCopy]:
    """The job's row is locked (``SELECT … FOR UPDATE`` in a transaction on another connection). The first UPDATE
    the state machine executes is sent on yet another connection, where it waits on that lock; the caller gets a
    lost-connection error (2013) at once, as when its read timeout fires. The lock is released
    :data:`RELEASE_AFTER` s later: the first copy then commits."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no row locks: a writer waits for the whole database, so the first copy of a "
                    "statement cannot be left waiting on one row while the caller checks and runs it again")
    first = FirstCopy()
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                list(Job.objects.select_for_update().filter(id=job_id).values_list("id", flat=True))
                locked.set()
                release.wait(30)
        except BaseException as exc:
            first.errors.append(exc)
        finally:
            connections.close_all()

    def run_first_copy(sql: str, params: list[Any], session: list[int]) -> None:
        try:
            session.append(backend_id())
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                first.rows.append(cursor.rowcount)
        except BaseException as exc:
            first.errors.append(exc)
        finally:
            connections.close_all()

    original = Sql.execute

    def execute(self: Sql, sql: str, params: Sequence[Any]) -> int:
        if first.sql or not is_update(sql):
            return original(self, sql, params)
        first.sql = sql
        session: list[int] = []
        copy = threading.Thread(target=run_first_copy, args=(sql, list(params), session))
        copy.start()
        first.threads.append(copy)
        wait_until(lambda: session and in_thread(lambda: waits_on_a_lock(session[0])), timeout=60, interval=0.02,
                   message="the first copy of the statement to wait on the row lock")
        timer = threading.Timer(RELEASE_AFTER, release.set)
        timer.start()
        first.threads.append(timer)
        raise lost_connection()

    locker = threading.Thread(target=hold_lock)
    locker.start()
    first.threads.append(locker)
    assert locked.wait(10), f"could not lock job {job_id}'s row: {first.errors}"
    try:
        with mock.patch.object(Sql, "execute", execute):
            yield first
    finally:
        release.set()
        for thread in first.threads:
            thread.join(timeout=30)
    assert first.sql, "the state machine executed no UPDATE through db.Sql.execute"
    assert not first.errors, f"the first copy or the lock holder failed: {first.errors}"
    assert first.rows == [1], f"the first copy of the statement should have changed the row: {first.rows}"


def row(job_id: int) -> tuple[str, int]:
    job = Job.objects.get(id=job_id)
    return job.status, job.cid


# ------------------------------------------------------------------------------------------------ window 4

def test_w4_claim_whose_first_copy_committed_after_its_answer_was_lost_returns_the_job(key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", json={})
    with answer_lost_while_waiting_on_a_row_lock(job.id):
        won = sm.claim("record", [Ref(job.id, job.cid)], worker="test-w4", lease_seconds=30, using="default")
    assert row(job.id) == ("doing", job.cid + 1)
    assert [(j.id, j.cid) for j in won] == [(job.id, job.cid + 1)], (
        f"the claim returned {won} although it owns job {job.id} (doing at cid {job.cid + 1}): nobody will run it")


def test_w4_repush_whose_first_copy_committed_after_its_answer_was_lost_does_not_raise(key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", json={})
    with answer_lost_while_waiting_on_a_row_lock(job.id):
        try:
            operators.repush(job.id, using="default")
        except CommitConflict as exc:
            pytest.fail(f"repush raised although its first copy was written: {exc}")
    assert row(job.id) == ("todo", job.cid + 1), "repushed exactly once"


def test_w4_operator_commit_whose_first_copy_committed_after_its_answer_was_lost_does_not_raise(key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", json={})
    with answer_lost_while_waiting_on_a_row_lock(job.id):
        try:
            operators.operator_commit(job.id, "done", using="default")
        except CommitConflict as exc:
            pytest.fail(f"operator_commit raised although its first copy was written: {exc}")
    assert row(job.id) == ("done", job.cid + 1), "committed exactly once"


# ------------------------------------------------------------------------------------------------ window 8

def test_w8_a_renewal_lost_before_it_reached_the_server_is_not_reported_renewed(key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", json={})
    [claimed] = sm.claim("record", [Ref(job.id, job.cid)], worker="test-w8", lease_seconds=1, using="default")
    original = Sql.execute
    dropped: list[str] = []

    def execute(self: Sql, sql: str, params: Sequence[Any]) -> int:
        if not dropped and is_update(sql):
            dropped.append(sql)
            raise lost_connection()  # the statement never reached the server
        return original(self, sql, params)

    lease = 60
    before = timezone.now()
    with mock.patch.object(Sql, "execute", execute):
        lost = sm.extend_leases([Ref(claimed.id, claimed.cid)], lease_seconds=lease, using="default")
    assert dropped, "extend_leases executed no UPDATE through db.Sql.execute"
    assert lost == set(), f"the lease of job {job.id} was not lost (it is still doing at cid {claimed.cid})"
    lease_until = Job.objects.get(id=job.id).lease_until
    assert lease_until is not None and lease_until >= before + timedelta(seconds=lease - 2), (
        f"extend_leases reported the lease renewed, but lease_until is {lease_until}, not about "
        f"{before + timedelta(seconds=lease)}: the renewal lost with its connection was never run again")


def test_renewals_landing_out_of_order_report_no_live_lease_lost(key_prefix) -> None:  # type: ignore[no-untyped-def]
    """Two renewals of one held job (the monitor and the proof of a waiting job) read the clock, then land in the
    other order, while a finished job in the same statement makes its count short. The one that read the later
    time must not find its effect undone by the earlier one and call the live lease lost (seen under load: the
    worker dropped the job, its lease expired, a second worker ran it)."""
    held, finished = Job.objects.push("record", json={}), Job.objects.push("record", json={})
    claimed = sm.claim("record", [Ref(held.id, held.cid), Ref(finished.id, finished.cid)], worker="test-race",
                       lease_seconds=30, using="default")
    by_id = {c.id: c for c in claimed}
    sm.finish_done("record", [by_id[finished.id].ref], using="default")  # its cid moved on
    now = timezone.now()
    original = Sql.execute
    raced: list[bool] = []

    def execute(self: Sql, sql: str, params: Sequence[Any]) -> int:
        changed = original(self, sql, params)
        if not raced and is_update(sql):  # the later reading landed; the earlier one lands now
            raced.append(True)
            sm.extend_leases([by_id[held.id].ref], lease_seconds=30, using="default", now=now)
        return changed

    with mock.patch.object(Sql, "execute", execute):
        lost = sm.extend_leases([by_id[held.id].ref, by_id[finished.id].ref], lease_seconds=30, using="default",
                                now=now + timedelta(seconds=2))
    assert raced, "extend_leases executed no UPDATE through db.Sql.execute"
    assert lost == {finished.id}, f"job {held.id} is still doing at its claim's cid: its lease is not lost"
    assert Job.objects.get(id=held.id).lease_until == now + timedelta(seconds=32), "a lease never moves back"


def test_a_lease_written_before_the_clock_stepped_back_is_renewed_to_the_new_time(key_prefix) -> None:  # type: ignore[no-untyped-def]
    """A lease only grows, but not past what a renewal at this clock could have written: one an hour ahead (the
    clock stepped back) is set to the renewal's time, so a worker that dies now is rescued a lease later, not an
    hour later."""
    job = Job.objects.push("record", json={})
    [claimed] = sm.claim("record", [Ref(job.id, job.cid)], worker="test-step", lease_seconds=30, using="default")
    now = timezone.now()
    Job.objects.filter(id=job.id).update(lease_until=now + timedelta(hours=1))
    lost = sm.extend_leases([claimed.ref], lease_seconds=30, using="default", now=now)
    assert lost == set()
    assert Job.objects.get(id=job.id).lease_until == now + timedelta(seconds=30)


def test_a_lost_renewal_of_a_batch_is_run_again_though_another_thread_renewed_part_of_it(key_prefix) -> None:  # type: ignore[no-untyped-def]
    """The monitor's renewal of two held jobs never reaches the server (its connection killed); meanwhile the
    proof of one waiting job renews that one to a later time. The re-check must see that the other lease is
    still the worker's but did not move — the statement never ran — and run it again, not report that live lease
    lost (seen in the chaos runs: a killed renewal made the worker drop live jobs)."""
    a, b = Job.objects.push("record", json={}), Job.objects.push("record", json={})
    claimed = sm.claim("record", [Ref(a.id, a.cid), Ref(b.id, b.cid)], worker="test-w8b", lease_seconds=5,
                       using="default")
    by_id = {c.id: c for c in claimed}
    now = timezone.now()
    original = Sql.execute
    dropped: list[str] = []

    def execute(self: Sql, sql: str, params: Sequence[Any]) -> int:
        if not dropped and is_update(sql):
            dropped.append(sql)
            # another thread's renewal of job a lands, later than ours; ours never reaches the server
            in_thread(lambda: sm.extend_leases([by_id[a.id].ref], lease_seconds=31, using="default", now=now))
            raise lost_connection()
        return original(self, sql, params)

    with mock.patch.object(Sql, "execute", execute):
        lost = sm.extend_leases([by_id[a.id].ref, by_id[b.id].ref], lease_seconds=30, using="default", now=now)
    assert dropped, "extend_leases executed no UPDATE through db.Sql.execute"
    assert lost == set(), "both jobs are still doing at their claim's cid: no lease was lost"
    assert Job.objects.get(id=b.id).lease_until == now + timedelta(seconds=30), "the renewal was run again"
