"""The job admin: a read-only list and detail, per-job buttons, bulk actions and a dashboard.

Nothing here writes a job's status or cid: every change goes through ``api.py`` (and so the state machine). The
change form edits nothing, there is no "add", and only finished jobs (done, failed) can be deleted — by a DELETE
conditioned on the status and cid the operator saw.
"""

from __future__ import annotations

from typing import Any

from admin_actions.admin import ActionsModelAdmin
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..conf import get_settings
from ..models import AbstractJob, Job
from ..purge import delete_jobs
from ..states import FINISHED_STATUSES
from ..tasks.results import describe as describe_task
from . import bulk, display, forbidden
from .buttons import BUTTONS, BY_VIEW, ButtonViews, button_links, may_press_any, url_name
from .dashboard import dashboard_view
from .filters import HasFailedFilter, TaskFilter
from .paginator import CappedCountPaginator
from .pausing import pause_view

# The detail page's times, each shown to the second (Django's DATETIME_FORMAT stops at the minute).
TIME_FIELDS = ("created_at", "updated_at", "due_at", "started_at", "finished_at", "lease_until")
TIME_VIEWS = tuple(f"{name}_view" for name in TIME_FIELDS)

# Columns never needed by the list: left in the database until a job's page is opened.
HEAVY_FIELDS = ("payload", "last_error", "result")


@admin.register(Job)
class JobAdmin(ButtonViews, ActionsModelAdmin):
    # django-admin-actions registers one URL per button (``<url_path>/<pk>/``) for the views in buttons.py.
    actions_row = tuple(b.view for b in BUTTONS)
    actions_detail = ()
    actions_list = ()
    actions = bulk.ACTIONS

    list_display = ("id", "task", "status_label", "progress", "fails", "cid", "created", "updated", "due",
                    "worker")
    list_display_links = ("id",)
    list_filter = (TaskFilter, "status", HasFailedFilter, ("created_at", admin.DateFieldListFilter),
                   ("finished_at", admin.DateFieldListFilter))
    search_fields = ("=id", "=idempotency_key")
    search_help_text = "A job id, or an idempotency key (exact match)."
    ordering = ("-id",)
    sortable_by = ("id",)
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    # Ours for every job table, not only meepo_job's (Django would pick admin/<app>/<model>/... by the model).
    change_list_template = "admin/django_meepo/jobs/change_list.html"
    change_form_template = "admin/django_meepo/jobs/change_form.html"

    fieldsets = (
        (None, {"fields": ("id", "task", "status_label", "progress_view", "cid", "priority", "idempotency_key",
                           "unique_view", "worker")}),
        ("Times", {"fields": TIME_VIEWS}),
        ("Counters", {"fields": ("attempts", "failed_times", "rescues")}),
        ("Payload", {"fields": ("payload_view",)}),
        ("Last error", {"fields": ("last_error_view",)}),
        ("Attempts", {"fields": ("attempts_view",)}),
        ("Result", {"fields": ("result",)}),
    )

    class Media:
        css = {"all": ("django_meepo/admin.css",)}

    # -- nothing is edited or added through forms
    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> list[str]:
        return [f for fieldset in self.get_fieldsets(request, obj) for f in fieldset[1]["fields"]]

    def get_fieldsets(self, request: HttpRequest, obj: Job | None = None) -> Any:
        """A Django Tasks job also shows its task, arguments and return value, read from the payload."""
        if obj is not None and describe_task(obj) is not None:
            return (*self.fieldsets[:3], ("Django Task", {"fields": ("django_task_view",)}), *self.fieldsets[3:])
        return self.fieldsets

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        """Only a finished job may be deleted (purging is a DELETE; a live job changes through buttons only)."""
        return super().has_delete_permission(request, obj) and (obj is None or obj.status in FINISHED_STATUSES)

    def has_repush_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_meepo.repush_job")

    def has_commit_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_meepo.commit_job")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_meepo.cancel_job")

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        # Django 6.1 passes action_location (and warns about overrides without it); Django 5.2 does not know it.
        extra = {} if action_location is None else {"action_location": action_location}
        actions = super().get_actions(request, **extra)
        actions.pop("delete_selected", None)  # would delete live jobs too; meepo_purge deletes finished ones
        return actions

    def delete_model(self, request: HttpRequest, obj: Job) -> None:
        deleted, _ = delete_jobs(type(obj).objects.using(obj._state.db)
                                 .filter(pk=obj.pk, cid=obj.cid, status__in=FINISHED_STATUSES))
        if not deleted:
            request._meepo_delete_refused = True  # type: ignore[attr-defined]

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any) -> HttpResponse:
        if getattr(request, "_meepo_delete_refused", False):
            messages.error(request, f"Job {obj_id} changed while you confirmed (it is no longer finished at the "
                                    f"cid you saw); it was not deleted.")
            return HttpResponseRedirect(self._change_url(obj_id))
        return super().response_delete(request, obj_display, obj_id)

    # -- list
    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        # MEEPO["DATABASE"]: the list, the detail page, the filters and the bulk actions read and change the
        # database the workers use, as the buttons do.
        return super().get_queryset(request).using(get_settings().database).defer(*HEAVY_FIELDS)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Job],
                           search_term: str) -> tuple[QuerySet[Job], bool]:
        """Exact matches only, each answered by an index: the primary key or the idempotency key."""
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(idempotency_key=term)
        if term.isdigit() and len(term) <= 19:
            condition |= Q(id=int(term))
        return queryset.filter(condition), False

    def get_list_display(self, request: HttpRequest) -> tuple[Any, ...]:
        columns = tuple(self.list_display)
        if not may_press_any(request.user):
            return columns  # staff without the permissions see the jobs, and no buttons
        next_url = request.get_full_path()

        def actions_holder(job: Job) -> SafeString:  # the name django-admin-actions' CSS styles
            return SafeString(render_to_string("admin/change_list_item_object_tools.html",
                                               {"actions_row": button_links(request.user, job, next_url)}))

        actions_holder.short_description = "Actions"  # type: ignore[attr-defined]
        return (*columns, actions_holder)

    @admin.display(description="status", ordering="status")
    def status_label(self, job: Job) -> SafeString:
        return format_html('<span class="meepo-status meepo-status-{}">{}</span>', job.status, job.status)

    @admin.display(description="fails", ordering="failed_times")
    def fails(self, job: Job) -> int:
        """``failed_times`` under a short label: the list must fit a 1,280 px window."""
        return job.failed_times

    @admin.display(description="progress")
    def progress(self, job: Job) -> SafeString:
        return display.progress_html(job.progress_done, job.progress_total, job.progress_note)

    @admin.display(description="progress")
    def progress_view(self, job: Job) -> SafeString:
        when = f" (reported {display.moment(job.progress_at)})" if job.progress_at else ""
        return format_html("{}{}", display.progress_html(job.progress_done, job.progress_total, job.progress_note,
                                                          wide=True), when)

    @admin.display(description="created", ordering="created_at")
    def created(self, job: Job) -> SafeString:
        return display.moment_html(job.created_at)

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, job: Job) -> SafeString:
        return display.moment_html(job.updated_at)

    @admin.display(description="due", ordering="due_at")
    def due(self, job: Job) -> SafeString:
        return display.moment_html(job.due_at)

    # -- detail
    @admin.display(description="unique key")
    def unique_view(self, job: Job) -> str:
        if not job.unique_key:
            return "-"
        holds = "holds it" if job.unique_hold else "let go of it (a later push found this job out of its scope)"
        return f"{job.unique_key} — {holds}"

    @admin.display(description="payload")
    def payload_view(self, job: Job) -> SafeString:
        return display.payload_html(job.payload_bytes)

    @admin.display(description="Django Task")
    def django_task_view(self, job: Job) -> SafeString:
        return display.task_html(describe_task(job))

    @admin.display(description="last error")
    def last_error_view(self, job: Job) -> SafeString:
        return display.error_html(job.last_error)

    @admin.display(description="attempts")
    def attempts_view(self, job: Job) -> SafeString:
        return display.attempts_html(job.attempt_history())

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # django-admin-actions' change_view would list every button; offer those the user and status allow.
        context = dict(extra_context or {})
        job = self.get_object(request, unquote(object_id))
        context["actions_list"] = button_links(request.user, job) if job is not None else []
        return admin.ModelAdmin.change_view(self, request, object_id, form_url, context)

    # -- dashboard
    def get_urls(self) -> list[URLPattern]:
        urls = super().get_urls()
        for pattern in urls:  # the buttons' URL names, per job model (buttons.url_name)
            if pattern.name in BY_VIEW:
                pattern.name = url_name(pattern.name, self.opts)
        if self.model is not Job:
            return forbidden.styled(self, urls)  # the dashboard (of every table) is the shared table's admin's
        dashboard = path("dashboard/", self.admin_site.admin_view(self.dashboard),
                         name="django_meepo_job_dashboard")
        pause = path("dashboard/pause/", self.admin_site.admin_view(self.pause_task),
                     name="django_meepo_job_pause_task")
        return forbidden.styled(self, [dashboard, pause, *urls])  # PermissionDenied: an admin page

    def dashboard(self, request: HttpRequest) -> HttpResponse:
        return dashboard_view(self, request)

    def pause_task(self, request: HttpRequest) -> HttpResponse:
        return pause_view(self, request)


def _time_view(field: str) -> Any:
    def view(self: JobAdmin, job: Job) -> str:
        return display.moment(getattr(job, field))

    view.__name__ = f"{field}_view"
    return admin.display(description=getattr(Job._meta.get_field(field), "verbose_name", field))(view)


for _field in TIME_FIELDS:
    setattr(JobAdmin, f"{_field}_view", _time_view(_field))


def register_job_models(site: admin.AdminSite = admin.site) -> list[type[AbstractJob]]:
    """One list per job table: a JobAdmin for every concrete AbstractJob subclass not registered yet (tables.py;
    its jobs get the same list, detail, buttons and bulk actions as meepo_job's). Returns those registered."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        if issubclass(model, AbstractJob) and not model._meta.proxy and not site.is_registered(model):
            site.register(model, type(f"{model.__name__}Admin", (JobAdmin,), {"__module__": __name__}))
            found.append(model)
    return found
