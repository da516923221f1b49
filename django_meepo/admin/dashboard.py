"""The admin dashboard: the numbers of ``stats.collect`` on one page (needs the job's view permission)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from .. import stats
from ..conf import get_settings
from ..exceptions import MeepoError
from ..models import Job
from ..states import ALL_STATUSES
from ..tables import for_task
from .dashcharts import chart_context
from .pausing import pause_rows


def dashboard_view(model_admin: Any, request: HttpRequest) -> TemplateResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied("the dashboard needs the permission to view jobs")
    snapshot = stats.collect()
    rows = [{
        "task": t,
        "list_url": list_url(t.name),
        "counts": [t.counts.get(s, 0) for s in ALL_STATUSES],
        "oldest_due": stats.format_age(t.oldest_due_seconds),
    } for t in snapshot.tasks]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Meepo dashboard",
        "opts": model_admin.opts,
        "snapshot": snapshot,
        "statuses": ALL_STATUSES,
        "rows": rows,
        "totals": [snapshot.totals.get(s, 0) for s in ALL_STATUSES],
        "refresh": _refresh(request),
        **pause_rows(request),
        **chart_context(request, snapshot.taken_at, using=get_settings().database),
    }
    return TemplateResponse(request, "admin/django_meepo/job/dashboard.html", context)


def list_url(task: str) -> str:
    """The job list of ``task``'s jobs: its table's (tables.py), filtered by the task."""
    opts: Any
    try:
        opts = for_task(task).model._meta
    except MeepoError:
        opts = Job._meta
    return f"{reverse(f'admin:{opts.app_label}_{opts.model_name}_changelist')}?{urlencode({'task': task})}"


def _refresh(request: HttpRequest) -> int | None:
    """``?refresh=N`` reloads the page every N seconds (5 to 3600)."""
    try:
        seconds = int(request.GET.get("refresh", ""))
    except ValueError:
        return None
    return seconds if 5 <= seconds <= 3600 else None
