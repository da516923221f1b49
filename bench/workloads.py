"""The workloads every system runs: processing a backlog, pushing one at a time and in bulk, losing Redis.

Every workload function runs one run of itself on a prepared system and adds what it measured to the
:class:`Context`'s collector; the system is reset (no job, no key) after it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import procs
from .config import Config
from .recorder import Probe, Progress
from .services import PrivateRedis
from .stats import Check, Sample
from .systems import System, Variant

log = logging.getLogger(__name__)

FLUSH_AT = 0.3  # the flush workload flushes Redis once this share of its jobs ran
TIME_BOXED = "time-boxed"
STALLED = "stalled"
NOTES = {TIME_BOXED: "the time box ended the run before every job ran; the figure is that of the jobs that ran",
         STALLED: "no job ran (or was re-dispatched) for the stall time before all had; the figure is that of those "
                  "that had"}


@dataclass
class Collector:
    system: str
    samples: list[Sample] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def add(self, figure: str, value: float, *, run: int, variant: str = "", note: str = "") -> None:
        self.samples.append(Sample(system=self.system, figure=figure, variant=variant, value=value, run=run,
                                   note=note))

    def check(self, workload: str, progress: Progress, *, expected: int, run: int, variant: str = "") -> None:
        self.checks.append(Check(system=self.system, workload=workload, variant=variant, run=run,
                                 expected=expected, ran=progress.ran, calls=progress.calls))


@dataclass
class Context:
    config: Config
    out: Collector
    run: int
    private: PrivateRedis | None = None

    @contextmanager
    def probe(self, system: System) -> Iterator[Probe]:
        """A results key of this run's own, deleted afterwards."""
        probe = Probe(self.config.services.redis("results"), f"bench:{system.prefix}:{self.run}:{uuid.uuid4().hex[:6]}")
        try:
            yield probe
        finally:
            probe.clear()

    def variants(self, system: System) -> list[Variant]:
        chosen = self.config.variants
        return [v for v in system.variants if not chosen or v.key in chosen] or list(system.variants[:1])


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def worker_env(system: System, probe: Probe, variant: Variant) -> dict[str, str]:
    return {**system.env(), **probe.env(), **system.record_env(variant)}


def unfinished(progress: Progress, expected: int, started: float, time_box: float) -> str:
    """The note of a run that ended before every job ran: TIME_BOXED or STALLED ("" when all ran)."""
    if progress.ran >= expected:
        return ""
    return TIME_BOXED if time.monotonic() - started >= time_box else STALLED


def drain(system: System, ctx: Context, probe: Probe, variant: Variant, expected: int) -> tuple[Progress, float, str]:
    """Start ``variant``'s workers on a pushed backlog; wait until it ran (or the time box / a stall ends it).

    Returns the progress, the rate (job calls over the time from the first call to the last one) and a note.
    """
    sizes = ctx.config.sizes
    started = time.monotonic()
    with procs.running(system.worker_commands(variant), worker_env(system, probe, variant)) as workers:
        progress = probe.wait(expected, stall=sizes.stall, deadline=started + sizes.time_box,
                              alive=lambda: procs.check_alive(workers))
        note = unfinished(progress, expected, started, sizes.time_box)
        window = probe.window()
    if window is None or window[1] <= window[0]:
        return progress, 0.0, note
    return progress, progress.calls / (window[1] - window[0]), note


def processed(system: System, ctx: Context) -> None:
    """Push ``jobs`` no-op jobs one at a time (→ pushed one at a time), then process them (→ processed)."""
    n = ctx.config.sizes.jobs
    for variant in ctx.variants(system):
        with ctx.probe(system) as probe:
            seconds = timed(lambda: system.push_one(range(n)))
            ctx.out.add("push_one", n / seconds, run=ctx.run)
            progress, rate, note = drain(system, ctx, probe, variant, n)
            ctx.out.add("processed", rate, run=ctx.run, variant=variant.key, note=note)
            ctx.out.check("processed", progress, expected=n, run=ctx.run, variant=variant.key)
            log.info("%s %s run %d: pushed %.0f/s one at a time, processed %.0f/s (%d of %d ran)", system.label,
                     variant.label, ctx.run + 1, n / seconds, rate, progress.ran, n)
        system.reset()


def push_bulk(system: System, ctx: Context) -> None:
    """Push ``jobs`` no-op jobs through the bulk API, ``bulk_size`` per call (→ pushed in bulk)."""
    n = ctx.config.sizes.jobs
    seconds = timed(lambda: system.push_bulk(range(n)))
    ctx.out.add("push_bulk", n / seconds, run=ctx.run)
    log.info("%s run %d: pushed %.0f/s in bulk (%s)", system.label, ctx.run + 1, n / seconds, system.bulk)
    system.reset()


def flush(system: System, ctx: Context) -> None:
    """Push ``flush_jobs``, start the workers, FLUSHALL the private redis-server once ~30 % ran; count the jobs
    that never ran (→ lost), waiting until all ran or none ran for ``stall`` seconds."""
    assert ctx.private is not None, "the flush workload runs on a private redis-server"
    n = ctx.config.sizes.flush_jobs
    variant = ctx.variants(system)[0]
    with ctx.probe(system) as probe:
        system.push_one(range(n))
        with procs.running(system.worker_commands(variant), worker_env(system, probe, variant)) as workers:
            alive = lambda: procs.check_alive(workers)  # noqa: E731
            before = probe.wait(int(n * FLUSH_AT), stall=ctx.config.sizes.stall, alive=alive, settle=False)
            ctx.private.client().flushall()
            progress = probe.wait(n, stall=ctx.config.sizes.stall, alive=alive)
        lost = n - progress.ran
        ctx.out.add("lost", lost, run=ctx.run, variant=variant.key)
        ctx.out.add("flushed_at", before.ran / n * 100, run=ctx.run, variant=variant.key)
        ctx.out.check("flush", progress, expected=n, run=ctx.run, variant=variant.key)
        log.info("%s %s run %d: Redis flushed after %d of %d jobs ran; %d never ran", system.label, variant.label,
                 ctx.run + 1, before.ran, n, lost)
    system.reset()


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    run: Callable[[System, Context], None]
    applies: Callable[[type[System]], bool]
    private_redis: bool = False


def _everyone(cls: type[System]) -> bool:
    return True


def _with_bulk(cls: type[System]) -> bool:
    return cls.bulk is not None


def _with_redis(cls: type[System]) -> bool:
    return cls.uses_redis


COMMON: Sequence[Workload] = (
    Workload("processed", processed, _everyone),
    Workload("push-bulk", push_bulk, _with_bulk),
    Workload("flush", flush, _with_redis, private_redis=True),
)
