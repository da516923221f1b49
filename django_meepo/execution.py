"""Running one job function and classifying what happened (done, failed, committed by itself)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any

from . import metrics, text, tracing
from .context import JobContext
from .registry import Task

log = logging.getLogger(__name__)

DONE = "done"
FAILED = "failed"
SELF_COMMITTED = "self_committed"


ERROR_CLASS_MAX = 300


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What one run came to. Its texts are made storable when it is built (``text.py``): NUL removed, lone
    surrogates escaped, the result cut to MAX_RESULT_BYTES (head kept), the error to MAX_ERROR_BYTES (tail kept)."""

    kind: str
    result: str | None = None
    error: str = ""
    error_class: str = ""

    def __post_init__(self) -> None:
        if self.result is not None:
            object.__setattr__(self, "result", text.result_text(self.result))
        if self.error:
            object.__setattr__(self, "error", text.error_text(self.error))
        if self.error_class:
            object.__setattr__(self, "error_class", text.clean(self.error_class)[:ERROR_CLASS_MAX])


def _class_path(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def call(function: Any, ctx: JobContext) -> Any:
    if inspect.iscoroutinefunction(function):
        return asyncio.run(function(ctx))
    value = function(ctx)
    if inspect.isawaitable(value):
        async def _await() -> Any:
            return await value

        return asyncio.run(_await())
    return value


def run_job(task: Task, ctx: JobContext) -> RunOutcome:
    """:func:`run_once`, observed: with the metrics extra its duration is measured (``meepo_job_duration_seconds``),
    with tracing it runs inside its consumer span (``tracing.consumer``). Neither changes the outcome."""
    if not (metrics.ENABLED or tracing.ENABLED):
        return run_once(task, ctx)
    started = time.perf_counter()
    if tracing.ENABLED:
        with tracing.consumer(ctx.task, ctx.id, ctx.job.attempts, ctx.job.trace_context) as span:
            outcome = run_once(task, ctx)
            if outcome.kind == FAILED:
                tracing.run_failed(span, outcome.error_class)
    else:
        outcome = run_once(task, ctx)
    if metrics.ENABLED:
        metrics.ran(ctx.task, time.perf_counter() - started)
    return outcome


def run_once(task: Task, ctx: JobContext) -> RunOutcome:
    """Call the task's function with ``ctx``; an exception (of any kind) is a failure with its traceback.

    Auto-commit: a normal return is ``done`` (a ``str`` return value is stored as the job's result). Manual
    mode: the function commits itself; returning without a commit is a failure. A run that snoozed (either
    mode) or committed itself records nothing more, whether it then returns or raises.
    """
    extra = {"job_id": ctx.id, "task": ctx.task}
    try:
        value = call(task.function, ctx)
    except BaseException as exc:
        if ctx.committed is not None:
            log.exception("meepo: %s job %s raised after committing %r; the commit stands", ctx.task, ctx.id,
                          ctx.committed.status, extra=extra)
            return RunOutcome(SELF_COMMITTED)
        log.warning("meepo: %s job %s failed: %s: %s", ctx.task, ctx.id, type(exc).__name__, exc, extra=extra)
        return RunOutcome(FAILED, error=traceback.format_exc(), error_class=_class_path(exc))
    if ctx.committed is not None:  # committed by hand (manual mode) or snoozed (either mode): the claim is over
        return RunOutcome(SELF_COMMITTED)
    if not task.options.auto_commit:
        message = (f"job function {task.path} returned without committing: it never called job.commit(), so the "
                   f"worker recorded this run as a failure (task {task.name!r} has AUTO_COMMIT False: call "
                   f"job.commit('done'|'failed'|'todo') before returning)")
        log.warning("meepo: %s job %s: %s", ctx.task, ctx.id, message, extra=extra)
        return RunOutcome(FAILED, error=message, error_class="django_meepo.exceptions.ReturnedWithoutCommit")
    return RunOutcome(DONE, result=value if isinstance(value, str) else None)
