"""The per-job buttons: Repush, Commit done, Commit failed, Commit todo, Cancel.

django-admin-actions registers their URLs (``actions_row``: ``<url_path>/<pk>/`` behind ``admin_site.admin_view``,
which checks only that the user is staff) and its templates render the links. The views behind the links are ours:

* a **GET** shows a confirmation page and changes nothing; it carries the cid the operator saw;
* a **POST** (with Django's CSRF token) acts through ``api.repush`` / ``api.operator_commit`` at that cid, so a job
  that changed meanwhile is refused with a :class:`~django_meepo.exceptions.CommitConflict` shown as a message;
* both need the permission (``django_meepo.repush_job`` for Repush, ``django_meepo.commit_job`` for the commits,
  ``django_meepo.cancel_job`` for Cancel): without it the button is not shown and a request, forged or not, gets
  403.

A button is shown only where the state machine allows it (``operators.OPERATOR_COMMIT_SOURCES``): Commit done
and Commit failed from todo, doing or zombie; Cancel from the same (``states.CANCEL_SOURCES``, through
``api.cancel``); Repush and Commit todo (the same transition) from any status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from .. import api
from ..exceptions import CommitConflict, CommitNotAllowed, JobNotFound
from ..models import AbstractJob
from ..operators import OPERATOR_COMMIT_SOURCES
from ..states import CANCEL_SOURCES, Status

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class Button:
    view: str  # the ModelAdmin method (and URL name) django-admin-actions registers
    url_path: str
    label: str
    target: str  # the status the job ends in
    permission: str  # codename on Job.Meta.permissions
    sources: tuple[str, ...] | None  # statuses it is offered from; None: any
    explanation: str

    @property
    def perm(self) -> str:
        return f"django_meepo.{self.permission}"

    def permitted(self, user: Any) -> bool:
        return bool(user.has_perm(self.perm))

    def allowed_from(self, status: str) -> bool:
        return self.sources is None or status in self.sources


_RUN_AGAIN = ("It becomes todo and due now with a new cid, its failure count starts again from 0, and any copy "
              "still running or queued is fenced off: its commit will be refused.")
BUTTONS: tuple[Button, ...] = (
    Button("meepo_job_repush", "repush", "Repush", Status.TODO, "repush_job", None,
           f"Force-repush the job: run it again whatever its status. {_RUN_AGAIN}"),
    Button("meepo_job_commit_done", "commit-done", "Commit done", Status.DONE, "commit_job",
           tuple(OPERATOR_COMMIT_SOURCES),
           "Mark the job done without running it (further). A copy still running will fail its own commit."),
    Button("meepo_job_commit_failed", "commit-failed", "Commit failed", Status.FAILED, "commit_job",
           tuple(OPERATOR_COMMIT_SOURCES),
           "Mark the job failed: it will not run again unless repushed. A copy still running will fail its own "
           "commit."),
    Button("meepo_job_commit_todo", "commit-todo", "Commit todo", Status.TODO, "commit_job", None,
           f"Commit the job todo (Meepo's Commit with status todo, the same transition as Repush). {_RUN_AGAIN}"),
    Button("meepo_job_cancel", "cancel", "Cancel", Status.CANCELLED, "cancel_job", tuple(CANCEL_SOURCES),
           "Cancel the job: if it is queued it never runs; if it is running, the run is fenced off (its commit "
           "will be refused) and its function sees job.cancelled at its next heartbeat. It will not run again "
           "unless repushed."),
)
CANCEL_VIEW = "meepo_job_cancel"
BY_VIEW = {b.view: b for b in BUTTONS}


def buttons_for(user: Any, status: str) -> list[Button]:
    """The buttons this user may press on a job in ``status``."""
    return [b for b in BUTTONS if b.permitted(user) and b.allowed_from(status)]


def may_press_any(user: Any) -> bool:
    return any(b.permitted(user) for b in BUTTONS)


def url_name(view: str, opts: Any) -> str:
    """The URL name of a button's view on the admin of the job model ``opts`` describes: the view's own name
    for ``meepo_job`` (as before per-task tables), prefixed by the model's for another job table (tables.py), so
    the admins of several job models do not share names."""
    if (opts.app_label, opts.model_name) == ("django_meepo", "job"):
        return view
    return f"{opts.app_label}_{opts.model_name}_{view}"


def button_links(user: Any, job: AbstractJob, next_url: str | None = None) -> list[dict[str, str]]:
    """django-admin-actions' link contract (``title``, ``path``) for the buttons offered on ``job``."""
    suffix = f"?{urlencode({'next': next_url})}" if next_url else ""
    return [{"title": b.label, "path": reverse(f"admin:{url_name(b.view, job._meta)}", args=(job.pk,)) + suffix}
            for b in buttons_for(user, job.status)]


class ConfirmForm(forms.Form):
    cid = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    next = forms.CharField(required=False, widget=forms.HiddenInput)
    note = forms.CharField(required=False, max_length=2000, label="Reason (recorded as the job's last error)",
                           widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


class ButtonViews:
    """Mixed into the job's ModelAdmin: one view per button, named as django-admin-actions expects."""

    admin_site: Any
    opts: Any
    model: type[AbstractJob]

    def _change_url(self, job_id: int) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=(job_id,))

    def _changelist_url(self) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")

    def _safe_next(self, request: HttpRequest, candidate: str | None, job_id: int) -> str:
        if candidate and candidate.startswith("/") and url_has_allowed_host_and_scheme(
                candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
            return candidate
        return self._change_url(job_id)

    def button_view(self, request: HttpRequest, pk: int, button: Button) -> HttpResponse:
        if not button.permitted(request.user):
            raise PermissionDenied(f"pressing {button.label} needs the {button.perm} permission")
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        job = self.model.objects.using(_alias()).defer("payload", "result").filter(pk=pk).first()
        if job is None:
            messages.error(request, f"No job with id {pk}: it may have been purged.")
            return redirect(self._changelist_url())
        if request.method == "POST":
            return self._press(request, job, button)
        next_url = self._safe_next(request, request.GET.get("next"), job.pk)
        if not button.allowed_from(job.status):
            messages.warning(request, f"Job {job.pk} is {job.status}: {button.label} is offered only from "
                                      f"{', '.join(button.sources or ())}. Nothing was changed.")
            return redirect(next_url)
        form = ConfirmForm(initial={"cid": job.cid, "next": next_url})
        context = {
            **self.admin_site.each_context(request),
            "title": f"{button.label}: job {job.pk}?",
            "opts": self.opts,
            "job": job,
            "button": button,
            "form": form,
            "ask_note": button.target in (Status.FAILED, Status.CANCELLED) and button.view != "meepo_job_repush",
            "cancel_url": next_url,
        }
        return TemplateResponse(request, "admin/django_meepo/job/confirm_button.html", context)

    def _press(self, request: HttpRequest, job: AbstractJob, button: Button) -> HttpResponse:
        form = ConfirmForm(request.POST)
        if not form.is_valid():
            return HttpResponseBadRequest(f"bad confirmation form: {form.errors.as_text()}")
        cid: int = form.cleaned_data["cid"]
        next_url = self._safe_next(request, form.cleaned_data["next"], job.pk)
        who = getattr(request.user, "get_username", lambda: "?")()
        try:
            if button.view == "meepo_job_repush":
                result = api.repush(job.pk, cid=cid, using=_alias(), task=job.task)
            elif button.view == CANCEL_VIEW:
                note = f"cancelled by {who} in the admin"
                if form.cleaned_data["note"]:
                    note += f": {form.cleaned_data['note']}"
                result = api.cancel(job.pk, cid=cid, using=_alias(), note=note, task=job.task)
            else:
                note = f"committed 'failed' by {who} in the admin"
                if form.cleaned_data["note"]:
                    note += f": {form.cleaned_data['note']}"
                result = api.operator_commit(job.pk, button.target, cid=cid, using=_alias(), note=note,
                                             task=job.task)
        except (CommitConflict, CommitNotAllowed) as exc:
            messages.error(request, f"{button.label} refused: {exc}")
            return redirect(next_url)
        except JobNotFound:
            messages.error(request, f"No job with id {job.pk}: it may have been purged.")
            return redirect(self._changelist_url())
        change = f"{button.label} by {who}: cid {cid} → {result.cid}, now {result.status}"
        log.info("meepo: %s job %s: %s", job.task, job.pk, change, extra={"job_id": job.pk, "task": job.task})
        # ModelAdmin.log_change (this mixin is only used on a ModelAdmin): the job's History page.
        self.log_change(request, job, change)  # type: ignore[attr-defined]
        messages.success(request, f"Job {job.pk}: {button.label.lower()} done; it is now {result.status} at cid "
                                  f"{result.cid}.")
        return redirect(next_url)


def _alias() -> str:
    from ..conf import get_settings

    return get_settings().database


def _make_view(button: Button) -> Callable[..., HttpResponse]:
    def view(self: ButtonViews, request: HttpRequest, pk: int) -> HttpResponse:
        return self.button_view(request, pk, button)

    view.__name__ = button.view
    view.short_description = button.label  # type: ignore[attr-defined]
    view.url_path = button.url_path  # type: ignore[attr-defined]
    return view


for _button in BUTTONS:
    setattr(ButtonViews, _button.view, _make_view(_button))
