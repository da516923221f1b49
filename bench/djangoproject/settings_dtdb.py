"""Settings of django-tasks-db under benchmark (the ``django-tasks`` backport's database backend)."""

from __future__ import annotations

from .settings_base import *  # noqa: F403
from .settings_base import database

INSTALLED_APPS = ["django_tasks", "django_tasks_db"]
DATABASES = {"default": database()}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
