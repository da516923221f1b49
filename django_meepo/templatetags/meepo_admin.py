"""Template filters of the django-meepo admin templates."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def thousands(value: object) -> str:
    """12345 → "12,345" (without depending on django.contrib.humanize being installed)."""
    try:
        return f"{int(value):,}"  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(value)
