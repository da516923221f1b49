"""Template filters of the django-meepo admin templates."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def thousands(value: object) -> str:
    """12345 → "12,345" (without depending on django.contrib.humanize being installed)."""
    try:
        return f"{int(value):,}"  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(value)


# The job list's pagination and search form, for every job table's list. Django finds a model's own templates by
# its app and model name (admin/<app>/<model>/pagination.html), so a job model in the user's app would get the
# stock ones, which print the capped count as if exact; the job list's template names ours through these tags.
@register.inclusion_tag("admin/django_meepo/job/pagination.html")
def meepo_pagination(cl: Any) -> dict[str, Any]:
    from django.contrib.admin.templatetags.admin_list import pagination

    return pagination(cl)


@register.inclusion_tag("admin/django_meepo/job/search_form.html")
def meepo_search_form(cl: Any) -> dict[str, Any]:
    from django.contrib.admin.templatetags.admin_list import search_form

    return search_form(cl)
