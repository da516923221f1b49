"""Workloads only django-meepo runs: pushes in transactions, pickup latency, statements per job, worker memory,
and the sweeper's re-dispatch of what Redis lost. Each targets a figure of issue 6.

They use django-meepo's public API only: ``Job.objects.push`` / ``push_many`` in Django transactions, and
``meepo_consume`` / ``meepo_sweep`` processes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence

from . import procs, sqlcount
from .djangoproject import MEEPO_CONCURRENCY, MEEPO_LATENCY, MEEPO_NOOP, MEEPO_RATE
from .recorder import Progress
from .services import server_questions
from .stats import percentile
from .systems import System
from .systems.meepo import Meepo
from .workloads import STALLED, Context, Workload, timed, worker_env

log = logging.getLogger(__name__)

TX_BATCH = 100


def _meepo(system: System) -> Meepo:
    assert isinstance(system, Meepo), "a django-meepo workload"
    return system


def tx(system: System, ctx: Context) -> None:
    """``tx_jobs`` single pushes, each in a transaction of its own (→ push_tx1), then in transactions of 100
    (→ push_tx100): django-meepo dispatches each transaction's jobs in one Redis call at its commit."""
    from django.db import transaction
    from django.utils import timezone

    from django_meepo import Job

    n = ctx.config.sizes.tx_jobs

    def one_per_transaction() -> None:
        for i in range(n):
            with transaction.atomic():
                Job.objects.push(MEEPO_NOOP, str(i).encode())

    def hundred_per_transaction() -> None:
        for start in range(0, n, TX_BATCH):
            with transaction.atomic():
                for i in range(start, min(n, start + TX_BATCH)):
                    Job.objects.push(MEEPO_NOOP, str(i).encode())

    def bare_insert_per_transaction() -> None:
        """The ceiling of one push per transaction here: Django's atomic() around one INSERT of a job row by a raw
        cursor (no model, no django-meepo, no Redis) — the round trips and fsync any push in its own transaction
        pays."""
        from django.db import connection

        table = Job._meta.db_table
        now = timezone.now()
        for i in range(n):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {table} (task, status, cid, priority, payload, failed_times, rescues, "
                               f"attempts, created_at, updated_at, due_at, worker, token, last_error) "
                               f"VALUES (%s, 'todo', 1, 0, %s, 0, 0, 0, %s, %s, %s, '', '', '')",
                               ["bench-floor", str(i).encode(), now, now, now])

    for figure, action in (("push_tx1", one_per_transaction), ("tx1_floor", bare_insert_per_transaction),
                           ("push_tx100", hundred_per_transaction)):
        seconds = timed(action)
        ctx.out.add(figure, n / seconds, run=ctx.run)
        log.info("django-meepo run %d: %s %.0f/s", ctx.run + 1, figure, n / seconds)
        system.reset()


def _push_committed(task: str) -> tuple[int, float]:
    """Push one job in a transaction; return its id and the time its transaction committed.

    The time is taken by an on-commit callback registered *before* the push, so it runs first at the commit,
    before the callback that dispatches the job (Django runs them in order).
    """
    from django.db import transaction

    from django_meepo import Job

    committed: list[float] = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.time()))
        job = Job.objects.push(task, b"")
    return job.id, committed[0]


def latency(system: System, ctx: Context) -> None:
    """An idle worker (1 process × 4): ``latency_samples`` jobs pushed one by one ``latency_gap`` s apart;
    the latency of each is its function's start time minus its transaction's commit (→ p50, p99)."""
    meepo = _meepo(system)
    sizes = ctx.config.sizes
    variant = meepo.variants[0]
    with ctx.probe(meepo) as probe:
        command = [("meepo-latency", meepo.consume_command(MEEPO_LATENCY, variant.slots))]
        with procs.running(command, worker_env(meepo, probe, variant)) as workers:
            alive = lambda: procs.check_alive(workers)  # noqa: E731
            _push_committed(MEEPO_LATENCY)  # warm-up: the worker is up and idle once it ran
            probe.wait(1, stall=sizes.stall, alive=alive)
            committed: dict[int, float] = {}
            for _ in range(sizes.latency_samples):
                job_id, at = _push_committed(MEEPO_LATENCY)
                committed[job_id] = at
                time.sleep(sizes.latency_gap * random.uniform(0.5, 1.5))
            progress = probe.wait(sizes.latency_samples + 1, stall=sizes.stall, alive=alive)
            starts = probe.starts()
        millis = [(starts[i] - at) * 1000 for i, at in committed.items() if i in starts]
        ctx.out.check("latency", progress, expected=sizes.latency_samples + 1, run=ctx.run)
        if millis:
            ctx.out.add("latency_p50", percentile(millis, 0.50), run=ctx.run)
            ctx.out.add("latency_p99", percentile(millis, 0.99), run=ctx.run)
            log.info("django-meepo run %d: pickup latency p50 %.1f ms, p99 %.1f ms (%d jobs)", ctx.run + 1,
                     percentile(millis, 0.5), percentile(millis, 0.99), len(millis))
    meepo.reset()


def statements(system: System, ctx: Context) -> None:
    """``jobs`` no-op jobs pushed with ``push_many``, then processed by each variant's workers, which count every
    statement they send (see sqlcount) from their start until the last job ran (→ statements per job);
    beside it the server-wide ``Questions`` delta over the same time (an upper bound: every client counts)."""
    meepo = _meepo(system)
    n = ctx.config.sizes.jobs
    database_url = ctx.config.services.database_url
    for variant in ctx.variants(meepo):
        with ctx.probe(meepo) as probe:
            meepo.push_bulk(range(n))
            key = f"{probe.key}:sql"
            env = {**worker_env(meepo, probe, variant), sqlcount.ENV_KEY: key}
            questions = server_questions(database_url)
            with procs.running(meepo.worker_commands(variant), env) as workers:
                progress = probe.wait(n, stall=ctx.config.sizes.stall, alive=lambda: procs.check_alive(workers))
                time.sleep(sqlcount.FLUSH_EVERY * 3)
                sent, connections = sqlcount.read(probe.url, key)
                questions = server_questions(database_url) - questions
            probe.client.delete(f"{key}:statements", f"{key}:connections")
            ran = max(1, progress.ran)
            ctx.out.add("statements", sent / ran, run=ctx.run, variant=variant.key)
            ctx.out.add("questions", questions / ran, run=ctx.run, variant=variant.key)
            ctx.out.add("connections", connections, run=ctx.run, variant=variant.key)
            ctx.out.check("statements", progress, expected=n, run=ctx.run, variant=variant.key)
            log.info("django-meepo %s run %d: %d statements for %d jobs (%.3f per job), %d connections; server "
                     "Questions %.3f per job", variant.label, ctx.run + 1, sent, progress.ran, sent / ran,
                     connections, questions / ran)
        meepo.reset()


def _chunks(start: int, stop: int, size: int) -> Sequence[range]:
    return [range(i, min(stop, i + size)) for i in range(start, stop, size)]


def rss(system: System, ctx: Context) -> None:
    """One worker (1 process × 4): its RSS once ``rss_small`` jobs ran, and once ``rss_large`` ran
    (→ rss_small, rss_large, rss_growth in %)."""
    meepo = _meepo(system)
    sizes = ctx.config.sizes
    variant = meepo.variants[0]
    with ctx.probe(meepo) as probe, procs.running(meepo.worker_commands(variant),
                                                  worker_env(meepo, probe, variant)) as workers:
        alive = lambda: procs.check_alive(workers)  # noqa: E731
        measured = []
        for start, stop in ((0, sizes.rss_small), (sizes.rss_small, sizes.rss_large)):
            for chunk in _chunks(start, stop, 10_000):
                meepo.push_bulk(chunk)
            progress = probe.wait(stop, stall=sizes.stall, alive=alive)
            time.sleep(0.5)
            measured.append(procs.rss_mb(workers[0].pid))
            ctx.out.check("rss", progress, expected=stop, run=ctx.run)
    small, large = measured
    ctx.out.add("rss_small", small, run=ctx.run)
    ctx.out.add("rss_large", large, run=ctx.run)
    ctx.out.add("rss_growth", (large - small) / small * 100, run=ctx.run)
    log.info("django-meepo run %d: worker RSS %.1f MB after %d jobs, %.1f MB after %d", ctx.run + 1, small,
             sizes.rss_small, large, sizes.rss_large)
    meepo.reset()


def sweep(system: System, ctx: Context) -> None:
    """``sweep_jobs`` todo jobs pushed with ``push_many``; every Redis key under the prefix deleted (what a flush
    loses); then the seconds from starting ``meepo_sweep`` until Redis holds all of them again (→ sweep)."""
    meepo = _meepo(system)
    sizes = ctx.config.sizes
    n = sizes.sweep_jobs
    meepo.push_bulk(range(n))
    deadline = time.monotonic() + sizes.time_box
    while meepo.queued() < n and time.monotonic() < deadline:
        time.sleep(0.05)
    meepo.forget_redis()
    started = time.monotonic()
    with procs.running([("meepo-sweep", meepo.sweep_command())], meepo.env()) as sweeper:
        queued, moved_at = 0, started
        while queued < n and time.monotonic() - moved_at < sizes.stall:
            procs.check_alive(sweeper)
            time.sleep(0.02)
            latest = meepo.queued()
            if latest != queued:
                queued, moved_at = latest, time.monotonic()
        seconds = time.monotonic() - started
    note = "" if queued >= n else STALLED
    ctx.out.add("sweep", seconds, run=ctx.run, note=note)
    ctx.out.check("sweep", Progress(queued, queued), expected=n, run=ctx.run)
    log.info("django-meepo run %d: the sweeper re-dispatched %d of %d lost jobs in %.2f s", ctx.run + 1, queued,
             n, seconds)
    meepo.reset()


FLOW_TASKS = (("processed_nolimit", MEEPO_NOOP), ("processed_concurrency", MEEPO_CONCURRENCY),
              ("processed_rate", MEEPO_RATE))


def flow(system: System, ctx: Context) -> None:
    """``jobs`` no-op jobs pushed in bulk to a task without limits, one with a (non-binding) global concurrency
    limit and one with a (non-binding) rate limit, each processed by the variant's workers in turn
    (→ processed_nolimit, processed_concurrency, processed_rate): the cost of counting a limit at each claim."""
    from django_meepo import Job

    meepo = _meepo(system)
    n = ctx.config.sizes.jobs
    for variant in ctx.variants(meepo):
        for figure, task in FLOW_TASKS:
            with ctx.probe(meepo) as probe:
                for chunk in _chunks(0, n, 10_000):
                    Job.objects.push_many(task, [str(i).encode() for i in chunk])
                commands = [(f"meepo-{task}-{i}", meepo.consume_command(task, variant.slots))
                            for i in range(variant.processes)]
                with procs.running(commands, worker_env(meepo, probe, variant)) as workers:
                    progress = probe.wait(n, stall=ctx.config.sizes.stall, alive=lambda: procs.check_alive(workers))
                    window = probe.window()
                rate = progress.calls / (window[1] - window[0]) if window and window[1] > window[0] else 0.0
                ctx.out.add(figure, rate, run=ctx.run, variant=variant.key)
                ctx.out.check(figure, progress, expected=n, run=ctx.run, variant=variant.key)
                log.info("django-meepo %s run %d: %s %.0f jobs/s (%d of %d ran)", variant.label, ctx.run + 1,
                         figure, rate, progress.ran, n)
            meepo.reset()


def _meepo_only(cls: type[System]) -> bool:
    return cls is Meepo


MEEPO_ONLY: Sequence[Workload] = (
    Workload("statements", statements, _meepo_only),
    Workload("tx", tx, _meepo_only),
    Workload("latency", latency, _meepo_only),
    Workload("rss", rss, _meepo_only),
    Workload("sweep", sweep, _meepo_only),
    Workload("flow", flow, _meepo_only),
)
