"""The "Dashboard" entry of the admin's app list (the index page and the navigation sidebar).

``Dashboard`` is a proxy model of ``Job`` with no permissions of its own: this ModelAdmin shows it to whoever may
view jobs, and its list URL (``/admin/django_meepo/dashboard/``) redirects to the job dashboard. Nothing can be
added, changed or deleted through it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from ..models import Dashboard

VIEW_JOBS = "django_meepo.view_job"


@admin.register(Dashboard)
class DashboardLinkAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(VIEW_JOBS)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(VIEW_JOBS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None
                        ) -> HttpResponseRedirect:
        """To the dashboard, for whoever may view jobs (403 for others, as the dashboard itself would say)."""
        if not self.has_view_permission(request):
            raise PermissionDenied("the dashboard needs the permission to view jobs")
        return HttpResponseRedirect(reverse("admin:django_meepo_job_dashboard", current_app=self.admin_site.name))
