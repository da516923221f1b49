"""The Django admin for django-meepo: jobs (list, detail, buttons, bulk actions, dashboard) and workers.

See docs/admin.md. Importing this package (the admin's autodiscovery does) registers both ModelAdmins and the
``meepo.E008`` system check.
"""

from __future__ import annotations

from . import checks  # noqa: F401 - registers meepo.E008
from .jobs import JobAdmin
from .workers import WorkerAdmin

__all__ = ["JobAdmin", "WorkerAdmin"]
