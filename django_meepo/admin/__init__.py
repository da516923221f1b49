"""The Django admin for django-meepo: jobs (list, detail, buttons, bulk actions, dashboard with charts), workers,
and a "Dashboard" entry in the app list.

See docs/admin.md. Importing this package (the admin's autodiscovery does) registers the ModelAdmins and the
``meepo.E008`` system check.
"""

from __future__ import annotations

from . import checks  # noqa: F401 - registers meepo.E008
from .index_link import DashboardLinkAdmin
from .jobs import JobAdmin
from .workers import WorkerAdmin

__all__ = ["DashboardLinkAdmin", "JobAdmin", "WorkerAdmin"]
