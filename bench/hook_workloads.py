"""The cost of django-meepo's optional hooks: jobs processed per second with neither extra, with ``[metrics]``
(prometheus-client), with ``[tracing]``'s API alone (no SDK: non-recording spans) and with an OpenTelemetry SDK
recording every span, in one run.

Each mode gets the same backlog of ``jobs`` no-op jobs, pushed by ``bench.hook_push`` under that mode (with
tracing, every row carries its push's trace context, so each run makes a linked ``process`` span), then drained
by the first selected worker layout with ``$BENCH_HOOKS`` set to the mode (bench/djangoproject/hooks.py hides
the extras a mode leaves out, and stops a worker whose hooks are not what it asks). Each run measures the four
modes back to back, in an order rotated from run to run, so that a machine that slows down during a run does
not always charge the same mode; the cost is each mode's rate against ``none`` in the same run.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Sequence

from .djangoproject import hooks
from .recorder import Probe
from .systems import System
from .systems.meepo import Meepo
from .workloads import Context, Workload, drain, worker_env

log = logging.getLogger(__name__)

PUSH_TIMEOUT = 600.0


def _meepo(system: System) -> Meepo:
    assert isinstance(system, Meepo), "a django-meepo workload"
    return system


def _order(run: int) -> list[str]:
    """The modes in the order run ``run`` measures them: rotated by one each run."""
    shift = run % len(hooks.MODES)
    return [*hooks.MODES[shift:], *hooks.MODES[:shift]]


def _spans(probe: Probe) -> int:
    """Spans the run's processes handed their exporters (counted into the results Redis), and forget them."""
    return int(probe.client.getdel(f"{probe.key}:{hooks.SPANS_KEY}") or 0)


def _traced_rows() -> int:
    from django_meepo.models import Job

    return Job.objects.exclude(trace_context=None).count()


def _one(meepo: Meepo, ctx: Context, mode: str) -> float:
    """Push and drain ``jobs`` jobs with the hooks of ``mode``; return the processed rate (jobs/s)."""
    n = ctx.config.sizes.jobs
    variant = ctx.variants(meepo)[0]
    meepo.hooks = mode
    try:
        with ctx.probe(meepo) as probe:
            env = worker_env(meepo, probe, variant)
            subprocess.run([sys.executable, "-m", "bench.hook_push", str(n), str(ctx.config.sizes.bulk_size)],
                           env=env, check=True, timeout=PUSH_TIMEOUT, stdin=subprocess.DEVNULL)
            traced = _traced_rows()
            if (traced == n) != (mode == hooks.TRACING):
                raise RuntimeError(f"hooks {mode}: {traced} of {n} pushed rows carry a trace context")
            progress, rate, note = drain(meepo, ctx, probe, variant, n)
            spans = _spans(probe)
            if mode == hooks.TRACING and spans < n:
                raise RuntimeError(f"hooks tracing: the workers exported {spans} spans for {n} jobs")
            ctx.out.add(f"hooks_{mode}", rate, run=ctx.run, variant=variant.key, note=note)
            ctx.out.check("hooks", progress, expected=n, run=ctx.run, variant=f"{variant.key} {mode}")
            log.info("django-meepo %s run %d, hooks %s: processed %.0f/s (%d of %d ran; %d spans)", variant.label,
                     ctx.run + 1, mode, rate, progress.ran, n, spans)
    finally:
        meepo.hooks = hooks.NONE
        meepo.reset()
    return rate


def hook_costs(system: System, ctx: Context) -> None:
    """Processed jobs/s with no extra, metrics, the tracing API alone, an SDK (→ hooks_none, hooks_metrics,
    hooks_tracing_api, hooks_tracing) and what each costs against none in the same run, in % (→ hooks_<mode>_cost)."""
    meepo = _meepo(system)
    variant = ctx.variants(meepo)[0]
    rates = {mode: _one(meepo, ctx, mode) for mode in _order(ctx.run)}
    if rates[hooks.NONE] > 0:
        for mode in hooks.MODES[1:]:
            cost = (rates[hooks.NONE] - rates[mode]) / rates[hooks.NONE] * 100
            ctx.out.add(f"hooks_{mode}_cost", cost, run=ctx.run, variant=variant.key)


def _meepo_only(cls: type[System]) -> bool:
    return cls is Meepo


HOOKS: Sequence[Workload] = (Workload("hooks", hook_costs, _meepo_only),)
