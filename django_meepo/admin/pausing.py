"""The dashboard's Pause / Resume button per task (``pauses.py`` does the work).

* The dashboard lists every declared task (and every paused one no longer declared) with its pause state; users
  with the ``django_meepo.pause_task`` permission see a Pause or Resume button beside each.
* The button is a **POST** form (Django's CSRF token; ``admin_site.admin_view`` checks it) to
  ``dashboard/pause/`` with the task and ``pause`` or ``resume``; a GET there is refused (405), a user without the
  permission gets 403, an unknown task or action a message and nothing changed. It then goes back to the dashboard.

Pressing Pause twice (a double click, a reload that re-posts) pauses once: ``pauses.pause`` is idempotent.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect

from .. import api
from ..exceptions import MeepoError
from ..registry import task_names

PERMISSION = "django_meepo.pause_task"
ACTIONS = ("pause", "resume")


def pause_rows(request: HttpRequest) -> dict[str, Any]:
    """The dashboard's context for its pause block: a row per task, and whether this user may press the buttons."""
    stored = {p.task: p for p in api.paused()}
    names = sorted({*task_names(), *stored})
    rows = [{"task": name, "pause": stored.get(name)} for name in names]
    return {"pause_rows": rows, "can_pause": request.user.has_perm(PERMISSION)}


def pause_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """Pause or resume one task (POST only, with the permission); back to the dashboard with a message."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied("pausing a task needs the django_meepo.pause_task permission")
    task, action = request.POST.get("task", ""), request.POST.get("action", "")
    back = redirect("admin:django_meepo_job_dashboard")
    if action not in ACTIONS or not task:
        messages.error(request, f"give a task and an action ({' or '.join(ACTIONS)}); nothing was changed")
        return back
    try:
        if action == "pause":
            changed = api.pause(task, by=f"{request.user.get_username()} (admin)")
            text = f"paused {task}" if changed else f"{task} was already paused"
        else:
            changed = api.resume(task)
            text = f"resumed {task}" if changed else f"{task} was not paused"
    except (MeepoError, ValueError) as exc:
        messages.error(request, f"{exc}; nothing was changed")
        return back
    messages.success(request, text)
    return back
