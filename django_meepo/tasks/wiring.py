"""Wiring of the Tasks backend, called from ``AppConfig.ready()``: no singletons, only registrations.

* imports the Tasks framework's checks and signals, so ``manage.py check`` runs every backend's ``check()``
  and ``override_settings(TASKS=...)`` resets the backends (the backport registers them only when
  ``django_tasks`` is in INSTALLED_APPS; django.tasks does it on import);
* registers the provider that declares one django-meepo task per queue of each MeepoBackend;
* forgets resolved tasks when ``TASKS`` changes.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from ..registry import ProvidedTask, clear_cache, register_provider
from .queues import meepo_backends, queue_names, queue_options

if TYPE_CHECKING:
    from ..options import TaskOptions


def framework_name() -> str | None:
    """``"django.tasks"``, ``"django_tasks"`` or None: which Tasks framework this process can import."""
    if find_spec("django.tasks") is not None:
        return "django.tasks"
    if find_spec("django_tasks") is not None:
        return "django_tasks"
    return None


def provide() -> list[ProvidedTask]:
    """One django-meepo task per queue of every MeepoBackend in ``TASKS``; its job function runs Django Tasks."""
    from functools import partial

    from .runner import finished, run_django_task

    return [ProvidedTask(name=queue, function=run_django_task, options=queue_options(params, queue),
                         origin=f"TASKS[{alias!r}] (queue {queue!r})", job_options=job_options,
                         on_finished=partial(finished, task=queue))
            for alias, params in meepo_backends() for queue in queue_names(params)]


def job_options(payload: bytes, options: TaskOptions) -> TaskOptions:
    """A Task's own max_attempts and retry_backoff over its queue's, for the sweeper's expired leases too."""
    from .payload import TaskSpec
    from .runner import retry_options

    spec = TaskSpec.parse(payload)
    return retry_options(spec, options) if spec is not None else options


def _on_setting_changed(setting: str, **_: Any) -> None:
    if setting == "TASKS":
        clear_cache()


def connect() -> None:
    from django.core.signals import setting_changed

    name = framework_name()
    if name is None:
        return
    if name == "django.tasks":
        import_module("django.tasks")
    else:
        import_module("django_tasks.checks")
        import_module("django_tasks.signals")
    register_provider(provide)
    setting_changed.connect(_on_setting_changed, weak=False, dispatch_uid="django_meepo.tasks.settings")
