"""Issue 9's loss windows 1, 3, 5 and 6, end to end: real ``meepo_consume`` processes, the real database and Redis.

Each test checks outcomes only — a job ran exactly once, at which cid, how it ended — so that it holds whatever
the worker, the transports and the Redis keys look like inside.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis as redis_py
from django.conf import settings
from django.db.models import Count
from django.test import override_settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from django_meepo import Job, api
from testproject.models import Run
from tests.support.redis_only import REDIS_ONLY_BANNER
from tests.support.services import RedisServer, wait_until
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# The fault hook's announcement (testproject/faults.py, deadlock_second_claim).
DEADLOCK_INJECTED = "meepo-test: deadlock_second_claim:"


def finished(ids: list[int]) -> bool:
    return Job.objects.filter(id__in=ids, status__in=["done", "failed"]).count() == len(ids)


def runs(ids: list[int]) -> dict[int, int]:
    return dict(Run.objects.filter(job_id__in=ids).values_list("job_id").annotate(n=Count("id")).order_by())


def eventually(predicate: Callable[[], object], *, timeout: float, message: str, details: Callable[[], str]) -> None:
    """``wait_until``, with ``details()`` (read when the wait failed) added to its message."""
    try:
        wait_until(predicate, timeout=timeout, message=message)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {details()}") from None


def states(ids: list[int]) -> dict[int, tuple[str, int]]:
    return {i: (s, r) for i, s, r in Job.objects.filter(id__in=ids).values_list("id", "status", "rescues")}


@pytest.fixture
def debug_redis() -> Iterator[RedisServer]:
    """A private redis-server that accepts ``DEBUG SLEEP`` (a stall of the whole server), used by django-meepo
    and the worker subprocesses instead of the shared one."""
    server = RedisServer(extra_args=("--enable-debug-command", "yes")).start()
    caches = {**settings.CACHES, "meepo": {**settings.CACHES["meepo"], "LOCATION": server.url}}
    try:
        with override_settings(CACHES=caches):
            yield server
    finally:
        server.cleanup()


# ------------------------------------------------------------------------------------------------ window 1

def _lists_holding(client: redis_py.Redis, prefix: str, job_id: int) -> set[str]:
    """The Redis lists under ``prefix`` that hold an entry of this job (entries start with its id)."""
    entry = re.compile(rf"^{job_id}(\D|$)".encode())
    found = set()
    for key in client.scan_iter(match=f"*{prefix}:*", count=1000):
        if client.type(key) == b"list" and any(entry.match(e) for e in client.lrange(key, 0, -1)):
            found.add(key.decode())
    return found


def _asleep(server: RedisServer) -> bool:
    quick = redis_py.Redis(host="127.0.0.1", port=server.port, socket_timeout=0.25, retry=Retry(NoBackoff(), 0))
    try:
        quick.ping()
        return False
    except redis_py.TimeoutError:
        return True
    finally:
        quick.close()


def _stall(server: RedisServer, seconds: int) -> threading.Thread:
    """``DEBUG SLEEP seconds`` from a thread of its own: the server runs nothing else meanwhile."""
    client = redis_py.Redis(host="127.0.0.1", port=server.port, socket_timeout=seconds + 10)
    thread = threading.Thread(target=client.execute_command, args=("DEBUG", "SLEEP", str(seconds)), daemon=True)
    thread.start()
    wait_until(lambda: _asleep(server), timeout=5, interval=0.01, message="DEBUG SLEEP to stall Redis")
    return thread


def test_w1_a_pop_whose_reply_was_lost_still_runs_its_job(debug_redis, workers, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # The worker's socket timeout (1 s) is shorter than the stall (3 s): its pop is queued behind DEBUG SLEEP,
    # times out on the client, and still runs on the server once the stall ends — the entry moves into the
    # worker's in-flight list, and the reply saying so is lost.
    worker = workers.consume("record", redis_only=True, MEEPO_REDIS_SOCKET_TIMEOUT="1")
    wait_until(lambda: REDIS_ONLY_BANNER in worker.output(), timeout=30, message="the Redis-only worker to start")
    warm = Job.objects.push("record", json={})
    wait_until(lambda: finished([warm.id]), timeout=30, message="a first job to run (the worker is up)")
    client = debug_redis.client()

    worker.signal(signal.SIGSTOP)  # so that its pop of job A can only be sent while Redis is stalled
    try:
        lost = Job.objects.push("record", json={})
        queued_in = wait_until(lambda: _lists_holding(client, key_prefix, lost.id), timeout=10,
                               message="job A to be dispatched to Redis")
        stall = _stall(debug_redis, 3)
    finally:
        worker.signal(signal.SIGCONT)  # it wakes to A's notification and pops: its pop waits behind the stall
    stall.join(timeout=15)
    assert not stall.is_alive(), "DEBUG SLEEP did not return"
    wait_until(lambda: not (_lists_holding(client, key_prefix, lost.id) & queued_in), timeout=10,
               message="the worker's pop to take job A's entry out of its queue (the pop ran on the server)")

    later = Job.objects.push("record", json={})  # a later fetch that succeeds, and its ack
    wait_until(lambda: finished([later.id]), timeout=30, message="job B, pushed after the stall, to run")
    eventually(lambda: finished([lost.id]), timeout=20,
               message=f"job A ({lost.id}), whose pop reply was lost during the Redis stall, to run",
               details=lambda: f"it is {Job.objects.get(id=lost.id).status!r}; worker log:\n{worker.output()[-3000:]}")
    assert runs([warm.id, lost.id, later.id]) == {warm.id: 1, lost.id: 1, later.id: 1}


# ------------------------------------------------------------------------------------------------ window 3

def test_w3_jobs_claimed_before_a_later_claim_raised_run_at_once(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # Both tasks have jobs waiting when the worker starts, so its first fetch claims both; the claim of the
    # second raises a deadlock (1213) once, after the first one's claim committed. Under zombie_status "failed"
    # a job left `doing` with nobody running it would end failed at its lease's expiry, never having run.
    first = Job.objects.push_many("windows_claim_a", json=[{}, {}])
    second = Job.objects.push_many("windows_claim_b", json=[{}, {}])
    ids = [j.id for j in (*first, *second)]
    worker = workers.consume("windows_claim_a", "windows_claim_b", MEEPO_TEST_FAULT="deadlock_second_claim")
    eventually(lambda: DEADLOCK_INJECTED in worker.output(), timeout=30,
               message="the injected deadlock on the second claim",
               details=lambda: f"worker log:\n{worker.output()[-3000:]}")
    wait_until(lambda: finished(ids), timeout=30, message="every job to end")
    assert states(ids) == {i: ("done", 0) for i in ids}, (
        f"(status, rescues) per job: jobs whose claim won before the deadlock must run at once, not wait for "
        f"their lease to expire; worker log:\n{worker.output()[-3000:]}")
    assert runs(ids) == {i: 1 for i in ids}


# ------------------------------------------------------------------------------------------------ window 5

def test_w5_a_queued_job_repushed_meanwhile_never_starts_at_its_old_cid(workers, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    # One slot, PREFETCH 5: three jobs wait in the first worker's queue behind a long one. One of them is
    # repushed (an operator) and runs on a second worker at a new cid; the first worker's queued copy holds a
    # cid that lost its lease and must never start.
    first = workers.consume("windows_prefetch")
    long = Job.objects.push("windows_prefetch", json={"sleep": 5})
    wait_until(lambda: Run.objects.filter(job_id=long.id).exists(), timeout=30, message="the long job to start")
    queued = [j.id for j in Job.objects.push_many("windows_prefetch", json=[{}, {}, {}])]
    wait_until(lambda: Job.objects.filter(id__in=queued, status="doing").count() == 3, timeout=10,
               message="the first worker to claim (prefetch) the three jobs queued behind the long one")
    victim = Job.objects.get(id=queued[1])
    assert victim.status == "doing"
    old_cid = victim.cid
    api.repush(victim.id, cid=old_cid)
    second = workers.consume("windows_prefetch")
    wait_until(lambda: Run.objects.filter(job_id=victim.id, cid__gt=old_cid).exists(), timeout=30,
               message="the repushed job to run again at a new cid")
    wait_until(lambda: finished([long.id, *queued]), timeout=30, message="every job to end")
    time.sleep(1.0)  # the first worker went through its queue: the old copy would have started by now
    old_runs = list(Run.objects.filter(job_id=victim.id, cid=old_cid).values_list("pid", flat=True))
    assert not old_runs, (
        f"job {victim.id} was repushed while it waited in a worker's queue at cid {old_cid}, yet that copy "
        f"started (pid {old_runs}; first worker {first.pid}, second {second.pid}); runs (cid, pid): "
        f"{list(Run.objects.filter(job_id=victim.id).values_list('cid', 'pid'))}")
    assert Job.objects.get(id=victim.id).status == "done"


# ------------------------------------------------------------------------------------------------ window 6

def _warm_up(task: str) -> None:
    """Run a few instant jobs first, so the worker has measured its job duration (the adaptive prefetch)."""
    ids = [j.id for j in Job.objects.push_many(task, json=[{} for _ in range(5)])]
    wait_until(lambda: finished(ids), timeout=30, message="the warm-up jobs to run")


@pytest.mark.parametrize("task", ["windows_prefetch", "windows_hostage"], ids=["fixed-prefetch", "adaptive"])
def test_w6_prefetched_jobs_are_not_held_hostage_behind_a_hung_job(workers, redis, key_prefix, task) -> None:  # type: ignore[no-untyped-def]
    # One slot: a job hangs for 25 s while fast jobs wait, claimed, in the same worker's queue. A second,
    # idle worker must get to run them long before the hung job ends.
    hanging_for = 25
    busy = workers.consume(task)
    _warm_up(task)
    hung = Job.objects.push(task, json={"sleep": hanging_for})
    wait_until(lambda: Run.objects.filter(job_id=hung.id).exists(), timeout=30, message="the hung job to start")
    fast = [j.id for j in Job.objects.push_many(task, json=[{} for _ in range(5)])]
    wait_until(lambda: Job.objects.filter(id__in=fast, status="doing").count() == len(fast), timeout=10,
               message="the busy worker to claim (prefetch) the fast jobs")
    idle: WorkerProcess = workers.consume(task)
    eventually(lambda: finished(fast), timeout=15,
               message=f"the fast jobs prefetched behind a job hung for {hanging_for} s to be handed back and "
                       f"run by the idle worker",
               details=lambda: f"(status, rescues) {states(fast)}")
    assert runs(fast) == {i: 1 for i in fast}
    assert set(Run.objects.filter(job_id__in=fast).values_list("pid", flat=True)) == {idle.pid}, (
        f"busy worker {busy.pid}")
    assert Job.objects.get(id=hung.id).status == "doing", "the hung job still runs"
