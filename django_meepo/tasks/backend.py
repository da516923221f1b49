"""MeepoBackend: Django's Tasks framework on django-meepo. Each queue is a django-meepo task.

```python
TASKS = {"default": {"BACKEND": "django_meepo.tasks.MeepoBackend", "QUEUES": ["default", "emails"]}}
```
``enqueue()`` INSERTs a Job in the caller's transaction (dispatched after the commit); ``get_result()`` reads
it back from any process. See docs/tasks.md.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core import checks

from ..conf import get_settings
from ..exceptions import MeepoError
from .compat import BaseTaskBackend, InvalidTask, Task, TaskResult, TaskResultDoesNotExist, task_enqueued
from .payload import TaskSpec, json_round_trip
from .queues import config_problems

if TYPE_CHECKING:
    from ..models import AbstractJob

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class MeepoTask(Task):
    """A Task with a retry policy of its own, over its queue's: ``@task(max_attempts=5, retry_backoff=2)``.

    ``max_attempts``: the n-th failed attempt is final (0 = no limit); ``retry_backoff``: seconds before the
    first retry, doubling each time (capped by the queue's RETRY_BACKOFF_MAX). None = the queue's option.
    Passing them to ``@task`` needs Django >= 6.1 or the django-tasks backport; on Django 6.0 use
    ``dataclasses.replace(my_task, max_attempts=5)`` or the backend's OPTIONS.
    """

    max_attempts: int | None = None
    retry_backoff: float | None = None


class MeepoBackend(BaseTaskBackend):
    """Runs Tasks as django-meepo jobs: leases, sweeper, retries, priorities, results from any process."""

    is_meepo_backend = True
    task_class = MeepoTask

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    @property
    def database(self) -> str:
        return get_settings().database

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        attempts = getattr(task, "max_attempts", None)
        if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0):
            raise InvalidTask(f"max_attempts must be a whole number >= 0 (0 = no limit), not {attempts!r}.")
        backoff = getattr(task, "retry_backoff", None)
        if backoff is not None and (isinstance(backoff, bool) or not isinstance(backoff, int | float)
                                    or not math.isfinite(backoff) or backoff < 0):
            raise InvalidTask(f"retry_backoff must be a number of seconds >= 0, not {backoff!r}.")

    def enqueue(self, task: Task, args: Sequence[Any], kwargs: dict[str, Any]) -> TaskResult:
        """INSERT the job now, in the caller's transaction; it is dispatched once that transaction commits."""
        from ..push import push
        from . import results

        self.validate_task(task)
        arguments = json_round_trip({"args": list(args), "kwargs": dict(kwargs)}, "a Task's arguments")
        spec = TaskSpec(path=task.module_path, backend=self.alias, args=arguments["args"],
                        kwargs=arguments["kwargs"], run_after=task.run_after,
                        max_attempts=getattr(task, "max_attempts", None),
                        retry_backoff=getattr(task, "retry_backoff", None))
        job = push(task.queue_name, json=spec.to_json(), due_at=task.run_after, priority=task.priority,
                   using=self.database)
        result = results.build(job, spec, task, using=self.database, past=results.NO_HISTORY)
        log.debug("meepo: enqueued %s as %s job %s", task.module_path, task.queue_name, job.id,
                  extra={"job_id": job.id, "task": task.queue_name})
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """The result of any task enqueued through this backend, from any process; TaskResultDoesNotExist if none."""
        from . import results
        from .errors import TaskJobError
        from .runner import load_task

        job = self._job_of(str(result_id))
        spec = TaskSpec.parse(job.payload_bytes) if job is not None else None
        if job is None or spec is None or spec.backend != self.alias or job.task not in self.queues:
            raise TaskResultDoesNotExist(result_id)
        try:
            task = load_task(spec)
        except TaskJobError as exc:
            raise TaskResultDoesNotExist(f"{result_id}: {exc}") from exc
        return results.build(job, spec, task, using=self.database)

    def _job_of(self, text: str) -> AbstractJob | None:
        """The job a result id names: ``123`` in the shared table, ``emails:123`` in queue emails's own table
        (results.result_id); None for an id that names no job of this backend's queues."""
        from ..models import Job
        from ..tables import for_task
        from .results import parse_result_id

        parsed = parse_result_id(text)
        if parsed is None:
            return None
        queue, job_id = parsed
        if queue is not None and queue not in self.queues:
            return None
        try:
            table = for_task(queue) if queue is not None else None
        except MeepoError:
            return None
        if table is not None and table.shared:
            return None  # a shared-table job's id is its number alone
        model = table.model if table is not None else Job
        job = model.objects.using(self.database).filter(id=job_id).first()
        return job if job is None or queue is None or job.task == queue else None

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        from django.conf import settings

        messages: list[checks.CheckMessage] = list(super().check(**kwargs))
        if not apps.is_installed("django_meepo"):
            messages.append(checks.Error(f"TASKS[{self.alias!r}] uses MeepoBackend but django_meepo is not in "
                                         f"INSTALLED_APPS", hint="Add 'django_meepo' to INSTALLED_APPS.",
                                         id="meepo.E010"))
        params = getattr(settings, "TASKS", {}).get(self.alias, {})
        messages += [checks.Error(p.message, hint=p.hint, id=p.id) for p in config_problems(self.alias, params)]
        return messages
