"""Bulk actions on a selection of jobs: repush, commit done, commit failed, cancel — each behind a confirmation
page.

The first POST (Django's action form) shows how many of the selected jobs will change, per status; nothing is
written. The confirmation form posts the same selection back with ``post=yes``; then ``operations.py`` changes the
jobs a page at a time through the state machine, each at its cid as read just before, and the changelist reports
how many changed and which were refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from .. import operations
from ..models import Job
from ..operators import OPERATOR_COMMIT_SOURCES
from ..states import CANCEL_SOURCES, Status

# How many refusal messages a bulk commit shows (the count is always given).
MESSAGES_SHOWN = 5


@dataclass(frozen=True, slots=True)
class BulkAction:
    name: str
    verb: str  # "repush" | "commit done" | "commit failed" | "cancel"
    target: str
    sources: tuple[str, ...] | None  # None: every status


REPUSH = BulkAction("repush_selected", "repush", Status.TODO, None)
COMMIT_DONE = BulkAction("commit_done_selected", "commit done", Status.DONE, tuple(OPERATOR_COMMIT_SOURCES))
COMMIT_FAILED = BulkAction("commit_failed_selected", "commit failed", Status.FAILED, tuple(OPERATOR_COMMIT_SOURCES))
CANCEL = BulkAction("cancel_selected", "cancel", Status.CANCELLED, tuple(CANCEL_SOURCES))


def confirm_or_run(model_admin: Any, request: HttpRequest, queryset: QuerySet[Job],
                   action: BulkAction) -> TemplateResponse | None:
    if request.POST.get("post") == "yes":
        _run(model_admin, request, queryset, action)
        return None  # back to the changelist, which shows the messages
    by_status = operations.count_by_status(queryset)
    total = sum(by_status.values())
    eligible = total if action.sources is None else sum(n for s, n in by_status.items() if s in action.sources)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{action.verb.capitalize()} {eligible} job{'s' if eligible != 1 else ''}?",
        "opts": model_admin.opts,
        "action": action,
        "action_name": request.POST.get("action", action.name),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "by_status": sorted(by_status.items()),
        "total": total,
        "eligible": eligible,
        "left_alone": total - eligible,
        "sources": action.sources,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/django_meepo/job/bulk_confirm.html", context)


def _run(model_admin: Any, request: HttpRequest, queryset: QuerySet[Job], action: BulkAction) -> None:
    who = request.user.get_username()
    if action is REPUSH:
        result = operations.repush_selection(queryset)
    elif action is CANCEL:
        result = operations.cancel_selection(queryset, note=f"cancelled by {who} in the admin")
    else:
        result = operations.commit_selection(queryset, action.target)
    model_admin.message_user(request, f"{action.verb.capitalize()}: {result.changed} job(s) changed by {who}.",
                             messages.SUCCESS)
    if result.skipped:
        shown = "; ".join(result.messages[:MESSAGES_SHOWN])
        more = f" (and {len(result.messages) - MESSAGES_SHOWN} more)" if len(result.messages) > MESSAGES_SHOWN else ""
        detail = f": {shown}{more}" if shown else " (they changed meanwhile)"
        model_admin.message_user(request, f"{result.skipped} job(s) were left alone{detail}", messages.WARNING)


@admin.action(description="Repush selected jobs", permissions=["repush"])
def repush_selected(model_admin: Any, request: HttpRequest, queryset: QuerySet[Job]) -> TemplateResponse | None:
    return confirm_or_run(model_admin, request, queryset, REPUSH)


@admin.action(description="Commit selected jobs done", permissions=["commit"])
def commit_done_selected(model_admin: Any, request: HttpRequest,
                         queryset: QuerySet[Job]) -> TemplateResponse | None:
    return confirm_or_run(model_admin, request, queryset, COMMIT_DONE)


@admin.action(description="Commit selected jobs failed", permissions=["commit"])
def commit_failed_selected(model_admin: Any, request: HttpRequest,
                           queryset: QuerySet[Job]) -> TemplateResponse | None:
    return confirm_or_run(model_admin, request, queryset, COMMIT_FAILED)


@admin.action(description="Cancel selected jobs", permissions=["cancel"])
def cancel_selected(model_admin: Any, request: HttpRequest, queryset: QuerySet[Job]) -> TemplateResponse | None:
    return confirm_or_run(model_admin, request, queryset, CANCEL)


ACTIONS = [repush_selected, commit_done_selected, commit_failed_selected, cancel_selected]
