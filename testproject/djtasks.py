"""Django Tasks of the test suite, run by ``django_meepo.tasks.MeepoBackend`` (see ``TASKS`` in settings).

Each records its runs in ``testproject_run`` (job id = the TaskResult id), so tests count how often it ran.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

from django_meepo.tasks.compat import Task, TaskContext, task

from .models import Run


def retry_policy(**policy: Any) -> Callable[[Task], Task]:
    """A Task's own ``max_attempts`` / ``retry_backoff`` (MeepoTask fields) on every supported Django.

    ``@task(max_attempts=...)`` needs Django >= 6.1 or the backport; Django 6.0's ``@task`` takes no extra
    arguments, so the Task is copied with them (``dataclasses.replace`` validates it again). The function keeps
    its name, so the Task's ``module_path`` still names this module attribute.
    """
    def apply(made: Task) -> Task:
        return dataclasses.replace(made, **policy)

    return apply


def _record(context: TaskContext) -> Run:
    result = context.task_result
    return Run.objects.create(job_id=int(result.id), task=result.task.queue_name, cid=0, attempt=context.attempt,
                              pid=os.getpid())


@task()
def add(a: int, b: int) -> int:
    return a + b


@task(queue_name="emails", priority=10)
def send_welcome(user_id: int, *, greeting: str = "Welcome") -> str:
    return f"{greeting}, user {user_id}!"


@task()
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@task()
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0.01)
    return a + b


@task(takes_context=True)
def whoami(context: TaskContext) -> dict[str, Any]:
    _record(context)
    return {"id": context.task_result.id, "attempt": context.attempt, "status": str(context.task_result.status),
            "workers": list(context.task_result.worker_ids)}


@task(takes_context=True)
def fail_until(context: TaskContext, succeed_on: int) -> int:
    """Raises on every attempt before ``succeed_on``; then returns the attempt number."""
    _record(context)
    if context.attempt < succeed_on:
        raise ValueError(f"planned failure on attempt {context.attempt}")
    return context.attempt


@task(takes_context=True)
def always_fails(context: TaskContext) -> None:
    _record(context)
    raise ValueError("always fails")


@retry_policy(max_attempts=1, retry_backoff=0)
@task(takes_context=True)
def fails_once_only(context: TaskContext) -> None:
    """Its own max_attempts (1) is below its queue's MAX_ATTEMPTS (3): one run, then FAILED."""
    _record(context)
    raise ValueError("no second chance")


@retry_policy(max_attempts=4, retry_backoff=0.1)
@task(takes_context=True)
def persistent(context: TaskContext, succeed_on: int) -> int:
    """Its own max_attempts (4) is above its queue's (emails: 2)."""
    _record(context)
    if context.attempt < succeed_on:
        raise ValueError(f"planned failure on attempt {context.attempt}")
    return context.attempt


@task(takes_context=True)
def record_order(context: TaskContext, label: str) -> str:
    _record(context)
    return label


@task(queue_name="slow", takes_context=True)
def sleepy(context: TaskContext, seconds: float) -> int:
    """Records its run, then sleeps: a worker killed meanwhile leaves it to its lease."""
    _record(context)
    time.sleep(seconds)
    return context.attempt


@task()
def unserialisable() -> object:
    return object()


def not_a_task(*args: Any, **kwargs: Any) -> None:
    """A plain function: a job naming it must never call it."""
    Run.objects.create(job_id=0, task="not_a_task", cid=0, attempt=0, pid=os.getpid())


@task(takes_context=True)
def repushed_on_first_run(context: TaskContext) -> int:
    """Its first run is repushed by an operator while it runs (cid + 1), so that run's commit loses."""
    from django_meepo import api
    from django_meepo.models import Job

    _record(context)
    if context.attempt == 1:
        job_id = int(context.task_result.id)
        api.repush(job_id, cid=Job.objects.filter(id=job_id).values_list("cid", flat=True).get())
    return context.attempt
