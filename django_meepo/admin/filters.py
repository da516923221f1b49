"""List filters of the job admin, each answerable from an index (see the model's ``Meta.indexes``)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ..models import Job
from ..tables import for_model, tasks_of


class TaskFilter(admin.SimpleListFilter):
    """The tasks declared on this list's job table, plus any task that still has jobs in it (an older deploy's,
    or one moved to a table of its own since) — DISTINCT on the task index."""

    title = "task"
    parameter_name = "task"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        in_db = model_admin.get_queryset(request).order_by().values_list("task", flat=True).distinct()
        return [(name, name) for name in sorted(set(tasks_of(for_model(model_admin.model))) | set(in_db))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        value = self.value()
        return queryset.filter(task=value) if value else queryset


class HasFailedFilter(admin.SimpleListFilter):
    """Jobs that failed at least once (``failed_times`` > 0), whatever their status now."""

    title = "has failed"
    parameter_name = "has_failed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        if self.value() == "yes":
            return queryset.filter(failed_times__gt=0)
        if self.value() == "no":
            return queryset.filter(failed_times=0)
        return queryset
