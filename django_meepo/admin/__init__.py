"""The Django admin for django-meepo: jobs (list, detail, buttons, bulk actions, dashboard with charts), workers,
and a "Dashboard" entry in the app list.

See docs/admin.md. Importing this package (the admin's autodiscovery does) registers the ModelAdmins and the
``meepo.E008`` system check.
"""

from __future__ import annotations

from . import checks  # noqa: F401 - registers meepo.E008
from .index_link import DashboardLinkAdmin
from .jobs import JobAdmin, register_job_models
from .workers import WorkerAdmin

register_job_models()  # a task's own job table (tables.py) gets a job list of its own, as meepo_job has

__all__ = ["DashboardLinkAdmin", "JobAdmin", "WorkerAdmin", "register_job_models"]
