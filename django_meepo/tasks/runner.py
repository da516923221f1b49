"""The job function of every queue: runs the Django Task a job names, and only a Task.

For each job: parse the payload strictly, find the Task by its path — importing only a module that is already
loaded or part of an installed app, never one a payload merely names — and check that it *is* a Task (an
arbitrary callable is never called), apply the Task's own retry policy, send ``task_started``, call it (with a
``TaskContext`` if it takes one; async functions run in an event loop of their own), and return its value as
JSON text — the worker stores it in ``Job.result`` when it commits ``done``.

``task_finished`` is sent by :func:`finished`, the queue's ``on_finished`` hook (``django_meepo.hooks``), once the
commit that ended the job is durable: the worker's (when it won) for ``done`` (SUCCESSFUL) and a final ``failed``
(FAILED, including a final failure by time limit), the sweeper's or an operator's. The result sent is read back
from the database, so a receiver sees what ``get_result()`` sees. A failure that will be retried sends nothing
more (the result is READY again, with the error recorded), and neither does a run whose commit lost (its lease
was taken over: the job runs again).
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from dataclasses import replace
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from ..conf import get_settings
from ..context import JobContext
from ..models import AbstractJob, Job
from ..options import TaskOptions
from ..registry import get_task
from ..states import Status
from ..tables import for_task
from ..text import max_result_bytes
from . import results
from .compat import Task, TaskContext, TaskResult, TaskResultStatus, backend_class, task_finished, task_started
from .errors import MalformedTaskJob, NotATask, RecordedTaskError, TaskJobError, TaskNotFound
from .payload import TaskSpec, json_round_trip

log = logging.getLogger(__name__)
_ABSENT: Any = object()


def load_task(spec: TaskSpec) -> Task:
    """The Task at ``spec.path``, found without importing anything a payload merely names.

    A payload is data anyone with database access can write (or a corrupt row), so its path is checked before
    any import: the module must already be loaded in this process, or be part of an installed app (an
    ``INSTALLED_APPS`` package: the project's own code). Otherwise nothing is imported and :class:`NotATask` says
    why (never retried). The name is then read from the module's namespace (no module ``__getattr__`` runs) and
    must be a Task. :class:`TaskNotFound` (retried like any failure: a worker one deploy behind may not have it
    yet) when an installed app's module does not import or lacks the name.
    """
    module_name, _, name = spec.path.rpartition(".")
    if not all(part.isidentifier() for part in (*module_name.split("."), name)):
        raise NotATask(f"{spec.path!r} is not a dotted path to a Django Task (package.module.name); nothing was "
                       f"imported")
    module = sys.modules.get(module_name)
    if module is None:
        if apps.get_containing_app_config(module_name) is None:
            raise NotATask(f"{spec.path!r} was refused: its module {module_name!r} is not loaded in this process "
                           f"and is not part of an installed app (INSTALLED_APPS), so it was not imported; a "
                           f"Django Task job can only name a Task of this project")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise TaskNotFound(f"Django Task {spec.path!r} does not import ({exc}): renamed, removed, or not "
                               f"deployed on this worker yet") from exc
    obj = vars(module).get(name, _ABSENT)
    if obj is _ABSENT:
        raise TaskNotFound(f"Django Task {spec.path!r} does not import (module {module_name!r} has no {name!r}): "
                           f"renamed, removed, or not deployed on this worker yet")
    if not isinstance(obj, Task):
        raise NotATask(f"{spec.path!r} is a {type(obj).__name__}, not a Django Task (a function decorated with "
                       f"@task); it was not called")
    return obj


def retry_options(spec: TaskSpec, options: TaskOptions) -> TaskOptions:
    """The queue's options with the Task's own ``max_attempts`` and ``retry_backoff`` (when it sets them)."""
    changes: dict[str, Any] = {}
    if spec.max_attempts is not None:
        changes["max_failed_times"] = spec.max_attempts
    if spec.retry_backoff is not None:
        changes["retry_backoff"] = float(spec.retry_backoff)
    return replace(options, **changes) if changes else options


def _send(signal: Any, sender: type, result: TaskResult, queue: str, job_id: int) -> None:
    for receiver, response in signal.send_robust(sender, task_result=result):
        if isinstance(response, Exception):
            log.error("meepo: a %r receiver (%r) raised for %s job %s: %r", signal, receiver, queue, job_id,
                      response, extra={"job_id": job_id, "task": queue})


def run_django_task(job: JobContext) -> str:
    """Run the Django Task named in ``job``'s payload; return its value as JSON text."""
    options = get_task(job.task).options
    spec = TaskSpec.parse(job.payload)
    if spec is None:
        job.retry_options = replace(options, max_failed_times=1)
        raise MalformedTaskJob(f"job {job.id} of queue {job.task!r} has no Django Task payload; it was not run")
    job.retry_options = retry_options(spec, options)
    try:
        task = load_task(spec)
    except NotATask:
        job.retry_options = replace(options, max_failed_times=1)  # never retried: it would never be one
        raise
    row = for_task(job.task).model.objects.using(get_settings().database).get(id=job.id)
    result = results.build(row, spec, task)
    _send(task_started, backend_class(spec.backend), result, job.task, job.id)
    args = [TaskContext(task_result=result), *result.args] if task.takes_context else result.args
    value = json_round_trip(task.call(*args, **result.kwargs), "a Task's return value")
    encoded = json.dumps(value, allow_nan=False, ensure_ascii=False)
    size, limit = len(encoded.encode("utf-8", "surrogatepass")), max_result_bytes()
    if size > limit:  # cut, it would no longer be JSON: the run fails with a clear error instead
        raise ValueError(f"a Task's return value is {size} bytes as JSON, over MEEPO['MAX_RESULT_BYTES'] ({limit} "
                         f"bytes); store large results elsewhere and return a reference")
    return encoded


def finished(job_ids: list[int], using: str, task: str | None = None) -> None:
    """Send ``task_finished`` for Tasks jobs that ended: the queue's ``on_finished`` hook (django_meepo.hooks),
    called after the commit that ended them — a worker's (``done``, or a final ``failed``, time limits included),
    the sweeper's (a worker lost on the last allowed attempt, or ZOMBIE_STATUS) or an operator's (a commit, or a
    cancel: the result sent is FAILED with a ``Cancelled`` error). The results
    sent are read back from the rows as committed (one query for the batch, one per job for its attempts), so a
    receiver sees what ``get_result()`` sees; rows no longer finished (repushed meanwhile) send nothing. Jobs that
    ran no Task (a malformed payload, a path that is not a Task or does not import) send nothing, as they sent
    no ``task_started``. A FAILED result is sent while a :class:`RecordedTaskError` holding its last traceback
    (``errors[-1]``) is being handled, so receivers logging ``exc_info`` print it; others outside any handler.
    """
    model = for_task(task).model if task else Job  # the queue's table (bound per queue by wiring.provide)
    for row in model.objects.using(using).filter(id__in=job_ids, status__in=FINISHED_OR_PARKED).order_by("id"):
        _send_finished(row)


def _send_finished(row: AbstractJob) -> None:
    spec = TaskSpec.parse(row.payload)
    if spec is None:
        return  # not a Task job: it ran no Task and sent no task_started
    try:
        sender = backend_class(spec.backend)
        task = load_task(spec)
    except (TaskJobError, ImproperlyConfigured) as exc:  # ImproperlyConfigured: no such backend now
        log.debug("meepo: %s job %s: no task_finished (%s)", row.task, row.id, exc,
                  extra={"job_id": row.id, "task": row.task})
        return
    result = results.build(row, spec, task)
    if result.status != TaskResultStatus.FAILED or not result.errors:
        _send(task_finished, sender, result, row.task, row.id)
        return
    error = result.errors[-1]
    try:  # a FAILED result is announced while its recorded error is the exception being handled
        raise RecordedTaskError(f"{error.exception_class_path} (recorded by django-meepo for job {row.id}):\n"
                                f"{error.traceback.rstrip()}")
    except RecordedTaskError:
        _send(task_finished, sender, result, row.task, row.id)


FINISHED_OR_PARKED = (Status.DONE, Status.FAILED, Status.ZOMBIE, Status.CANCELLED)
