"""The worker admin: the consumers that report themselves while they run (read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import URLPattern
from django.utils.safestring import SafeString

from ..clock import db_now
from ..conf import get_settings
from ..models import Worker
from ..states import Status
from ..stats import worker_alive
from ..tables import all_tables
from . import forbidden
from .display import moment_html


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ("id", "hostname", "pid", "task_list", "parallel", "alive", "holding", "processed", "failed",
                    "started", "seen")
    ordering = ("id",)

    class Media:
        css = {"all": ("django_meepo/admin.css",)}

    def get_urls(self) -> list[URLPattern]:
        return forbidden.styled(self, super().get_urls())  # deleting a live worker: the reason, not a bare 403

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Worker | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Worker | None = None) -> bool:
        """Only a stale row (a worker killed before it could remove it) may be deleted."""
        return super().has_delete_permission(request, obj) and (obj is None or not self.alive(obj))

    def get_actions(  # type: ignore[override]
        self, request: HttpRequest, action_location: Any = None,
    ) -> dict[str, Any]:
        # Django 6.1 passes action_location (and warns about overrides without it); Django 5.2 does not know it.
        extra = {} if action_location is None else {"action_location": action_location}
        actions = super().get_actions(request, **extra)
        actions.pop("delete_selected", None)
        return actions

    def get_queryset(self, request: HttpRequest) -> QuerySet[Worker]:
        alias = get_settings().database  # where the workers write their rows and their jobs live
        held: Any = Value(0)
        for table in all_tables():  # the doing jobs it holds in every job table (tables.py)
            rows = (table.model.objects.using(alias).filter(status=Status.DOING, worker=OuterRef("id")).order_by()
                    .values("worker").annotate(n=Count("id")).values("n"))
            held = held + Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))
        return super().get_queryset(request).using(alias).annotate(held=held)

    @admin.display(boolean=True)
    def alive(self, worker: Worker) -> bool:
        return worker_alive(worker, db_now(get_settings().database))

    @admin.display(description="tasks")
    def task_list(self, worker: Worker) -> str:
        """The row's comma-separated task names with a space after each comma, so the column can wrap."""
        return ", ".join(name.strip() for name in worker.tasks.split(",") if name.strip())

    @admin.display(description="started", ordering="started_at")
    def started(self, worker: Worker) -> SafeString:
        return moment_html(worker.started_at)

    @admin.display(description="last seen", ordering="last_seen")
    def seen(self, worker: Worker) -> SafeString:
        return moment_html(worker.last_seen)

    @admin.display(description="jobs held")
    def holding(self, worker: Worker) -> int:
        return getattr(worker, "held", 0)
