"""One import surface over Django's Tasks framework: ``django.tasks`` (Django >= 6.0) or the ``django-tasks``
backport (Django 5.2). When both are installed, ``django.tasks`` wins.

Importing this module without either raises :class:`ImportError` naming what to install.
"""

from __future__ import annotations

from typing import Any

from .wiring import framework_name

FRAMEWORK = framework_name()

if FRAMEWORK == "django.tasks":
    from django.tasks import TaskContext, TaskResult, TaskResultStatus, task, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task, TaskError
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json
elif FRAMEWORK == "django_tasks":
    from django_tasks import TaskContext, TaskResult, TaskResultStatus, task, task_backends  # type: ignore[no-redef,assignment]
    from django_tasks.backends.base import BaseTaskBackend  # type: ignore[no-redef,assignment]
    from django_tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task, TaskError  # type: ignore[no-redef,assignment]
    from django_tasks.exceptions import InvalidTaskError as InvalidTask  # type: ignore[no-redef,assignment]
    from django_tasks.exceptions import TaskResultDoesNotExist  # type: ignore[no-redef,assignment]
    from django_tasks.signals import task_enqueued, task_finished, task_started  # type: ignore[no-redef,assignment]
    from django_tasks.utils import normalize_json  # type: ignore[no-redef,assignment]
else:
    raise ImportError("django_meepo.tasks needs Django's Tasks framework: Django >= 6.0, or on Django 5.2 the "
                      "backport (pip install 'django-meepo[tasks]', i.e. django-tasks >= 0.12)")


def backend_class(alias: str) -> type[Any]:
    """The class of the backend configured as ``alias`` (the ``sender`` of the task signals)."""
    return type(task_backends[alias])


__all__ = [
    "FRAMEWORK",
    "TASK_MAX_PRIORITY",
    "TASK_MIN_PRIORITY",
    "BaseTaskBackend",
    "InvalidTask",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "backend_class",
    "normalize_json",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]
