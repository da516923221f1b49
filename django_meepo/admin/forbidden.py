"""A refused action as an admin page: the reason, in the admin's own layout, with status 403.

Django answers ``PermissionDenied`` with the project's ``handler403`` — a bare "403 Forbidden" unless the project
wrote one — and a reusable app cannot set that handler. :func:`styled` wraps the views of a ModelAdmin's URLs
instead: a ``PermissionDenied`` raised in one (a button pressed without its permission, a forged POST, the
dashboard without the view permission, deleting a live worker) renders ``admin/django_meepo/forbidden.html``.
Nothing was changed by the time the exception is raised, so the page only explains; pressing again is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern

TEMPLATE = "admin/django_meepo/forbidden.html"


def forbidden_response(model_admin: Any, request: HttpRequest, reason: str) -> HttpResponse:
    """The 403 page for ``reason`` (a sentence naming what was refused and the permission it needs)."""
    context = {**model_admin.admin_site.each_context(request), "title": "Not allowed",
               "opts": model_admin.opts, "reason": (reason or "you do not have the permission to do this").rstrip(".")}
    response = TemplateResponse(request, TEMPLATE, context, status=403)
    return response.render()


def _guarded(model_admin: Any, view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as exc:
            if not getattr(request.user, "is_staff", False):
                raise  # no admin page for someone who is not staff: Django's own 403
            return forbidden_response(model_admin, request, str(exc))

    return guarded


def styled(model_admin: Any, urls: list[URLPattern]) -> list[URLPattern]:
    """``urls`` with every view wrapped so that ``PermissionDenied`` renders :data:`TEMPLATE`; returns the list."""
    for entry in urls:
        if isinstance(entry, URLPattern):
            entry.callback = _guarded(model_admin, entry.callback)
    return urls
