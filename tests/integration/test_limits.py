"""Global flow limits against the real database (and Redis): the limited claim (limits.py), the token buckets
(ratelimit.py), push(concurrency_key=) and its bad input. End to end with worker processes: test_flow.py."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import close_old_connections, connections

from django_meepo import Job
from django_meepo.clock import db_now
from django_meepo.dispatch.database import select_due
from django_meepo.limits import FlowGate, ensure_rows
from django_meepo.models import FlowLimit
from django_meepo.ratelimit import Limiter, TaskRates
from django_meepo.registry import get_task
from django_meepo.states import Ref

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = 30.0


def gate(client: object | None = None) -> FlowGate:
    return FlowGate(Limiter(client), using="default")


def refs_of(jobs: list[Job]) -> list[Ref]:
    return [Ref(j.id, j.cid) for j in jobs]


def claim(g: FlowGate, task: str, refs: list[Ref], worker: str = "w1"):  # type: ignore[no-untyped-def]
    return g.claim(task, get_task(task).options, "meepo", refs, worker=worker, lease_seconds=LEASE)


def statuses(ids: list[int]) -> list[str]:
    return list(Job.objects.filter(id__in=ids).order_by("id").values_list("status", flat=True))


def test_a_concurrency_limit_claims_only_its_free_slots_and_leaves_the_rest_todo_without_an_attempt() -> None:
    jobs = Job.objects.push_many("flow_limited", json=[{}] * 5)  # concurrency=3
    g = gate()
    first = claim(g, "flow_limited", refs_of(jobs))
    assert len(first.won) == 3
    assert [c.ref.id for c in first.refused] == [j.id for j in jobs[3:]]
    assert first.retry_after > 0  # the task is full: the worker holds off for a moment
    refused = Job.objects.filter(id__in=[j.id for j in jobs[3:]])
    assert {(j.status, j.cid, j.attempts) for j in refused} == {("todo", 1, 0)}  # nothing burnt, nothing written
    again = claim(g, "flow_limited", refs_of(list(refused)), worker="w2")
    assert again.won == [] and len(again.refused) == 2
    # A slot whose lease expired (its worker died) counts no more, even before the sweeper moved the job.
    Job.objects.filter(id=first.won[0].id).update(lease_until=db_now("default") - timedelta(seconds=1))
    third = claim(g, "flow_limited", refs_of(list(refused)), worker="w3")
    assert len(third.won) == 1 and len(third.refused) == 1
    assert FlowLimit.objects.get(task="flow_limited", flow_key="").claims == 3


def test_stale_refs_are_neither_won_nor_refused() -> None:
    [job] = Job.objects.push_many("flow_limited", json=[{}])
    out = claim(gate(), "flow_limited", [Ref(job.id, job.cid + 5)])
    assert out.won == [] and out.refused == []


def test_concurrent_claims_never_both_win_the_last_slot() -> None:
    for _round in range(5):
        Job.objects.filter(task="flow_limited").delete()
        jobs = Job.objects.push_many("flow_limited", json=[{}] * 12)
        refs = refs_of(jobs)
        won: list[int] = []
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def run(n: int, refs: list[Ref] = refs, won: list[int] = won, barrier: threading.Barrier = barrier,
                errors: list[BaseException] = errors) -> None:
            try:
                g = gate()
                barrier.wait()
                # each thread tries its own slice first, then every ref: all four want slots at once
                got = claim(g, "flow_limited", refs[n * 3:] + refs[:n * 3], worker=f"w{n}")
                won.extend(j.id for j in got.won)
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        close_old_connections()
        assert not errors, errors
        assert len(won) == len(set(won)) == 3, won
        assert Job.objects.filter(task="flow_limited", status="doing").count() == 3


def test_a_key_limit_lets_one_job_per_key_run_and_other_keys_beside_it() -> None:
    a = Job.objects.push_many("flow_keyed", json=[{}] * 3, concurrency_key="account:1")
    b = Job.objects.push_many("flow_keyed", json=[{}] * 2, concurrency_key="account:2")
    [free] = Job.objects.push_many("flow_keyed", json=[{}])  # no key: only the task's limits (none) apply
    out = claim(gate(), "flow_keyed", refs_of(a + b + [free]))
    assert sorted(j.id for j in out.won) == sorted([a[0].id, b[0].id, free.id])
    assert sorted(c.ref.id for c in out.refused) == sorted([a[1].id, a[2].id, b[1].id])
    assert Job.objects.get(id=a[0].id).concurrency_key == "account:1"


def test_the_database_dispatcher_skips_the_rows_of_a_key_at_its_limit() -> None:
    a = Job.objects.push_many("flow_keyed", json=[{}] * 3, concurrency_key="account:1")
    b = Job.objects.push_many("flow_keyed", json=[{}] * 2, concurrency_key="account:2")
    claim(gate(), "flow_keyed", refs_of(a[:1]))  # account:1 now has its one running
    found = select_due("flow_keyed", 3, now=db_now("default"), using="default", lock=False, key_limit=1)
    assert [r.id for r in found] == [j.id for j in b]  # account:1's backlog does not hide account:2


def test_a_rate_counted_in_the_database_grants_one_burst_then_one_token_per_interval() -> None:
    jobs = Job.objects.push_many("flow_rated", json=[{}] * 15)  # rate 10/s
    g = gate(None)
    out = claim(g, "flow_rated", refs_of(jobs))
    assert len(out.won) == 10 and len(out.refused) == 5
    assert out.retry_after == 0  # some were claimed: no reason to hold the task off
    again = claim(g, "flow_rated", [c.ref for c in out.refused])
    assert len(again.won) <= 1 and 0 < again.retry_after <= 0.1 + 1e-6  # one token per 0.1 s
    row = FlowLimit.objects.get(task="flow_rated", flow_key="")
    assert row.tokens < 1 and row.refilled_at is not None


def test_a_rate_through_redis_grants_one_burst_per_bucket_and_keys_apart(redis) -> None:  # type: ignore[no-untyped-def]
    from django_meepo.dispatch import redis_client

    limiter = Limiter(redis_client())
    rates = TaskRates.of("flow_key_rated", settings.MEEPO["KEY_PREFIX"], None, "5/s")
    grant = limiter.take_redis(rates, ["a"] * 7 + ["b"] * 2 + [None])
    assert grant is not None
    assert grant.granted == [True] * 5 + [False] * 2 + [True] * 2 + [True]
    assert 0 < grant.retry_after <= 0.2 + 1e-3
    task_rates = TaskRates.of("flow_rated", settings.MEEPO["KEY_PREFIX"], "10/s", None)
    first = limiter.take_redis(task_rates, [None] * 12)
    assert first is not None and first.granted.count(True) == 10


def test_a_limiter_whose_redis_is_down_falls_back_to_the_database() -> None:
    from redis import Redis

    down = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    jobs = Job.objects.push_many("flow_rated", json=[{}] * 12)
    g = gate(down)
    out = claim(g, "flow_rated", refs_of(jobs))
    assert len(out.won) == 10 and len(out.refused) == 2
    assert not g.limiter.redis_ready()


def test_concurrency_key_for_a_task_without_key_limits_is_refused_and_nothing_is_written() -> None:
    with pytest.raises(ValueError, match=r"concurrency_key='account:1' was given for task 'flow_limited', which "
                                         r"has no per-key limit: set its key_concurrency= or key_rate="):
        Job.objects.push("flow_limited", json={}, concurrency_key="account:1")
    with pytest.raises(ValueError, match="concurrency_key must be a non-empty string"):
        Job.objects.push("flow_keyed", json={}, concurrency_key="")
    with pytest.raises(ValueError, match="concurrency_key must be a non-empty string"):
        Job.objects.push_many("flow_keyed", json=[{}], concurrency_key=42)  # type: ignore[arg-type]
    assert not Job.objects.exists()


def test_a_deleted_lock_row_fails_one_claim_as_a_database_error_and_is_made_again() -> None:
    from django.db import DatabaseError

    jobs = Job.objects.push_many("flow_limited", json=[{}] * 2)
    g = gate()
    assert len(claim(g, "flow_limited", refs_of(jobs[:1])).won) == 1
    FlowLimit.objects.all().delete()
    with pytest.raises(DatabaseError, match="flow-limit row of task 'flow_limited' is missing"):
        claim(g, "flow_limited", refs_of(jobs[1:]))
    assert Job.objects.get(id=jobs[1].id).status == "todo"
    assert len(claim(g, "flow_limited", refs_of(jobs[1:])).won) == 1


def test_ensure_rows_is_idempotent() -> None:
    ensure_rows("flow_keyed", ["a", "b"], using="default")
    ensure_rows("flow_keyed", ["b", "c"], using="default")
    assert sorted(FlowLimit.objects.filter(task="flow_keyed").values_list("flow_key", flat=True)) == [
        "", "a", "b", "c"]
