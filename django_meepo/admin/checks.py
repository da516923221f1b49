"""System checks of the admin integration (registered when ``django_meepo.admin`` is imported)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.checks import CheckMessage, Error, register

from ..doclinks import doc_link


@register()
def check_admin_actions(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The job admin renders its buttons with django-admin-actions' templates: its app must be installed."""
    if apps.is_installed("admin_actions"):
        return []
    return [Error("the django-meepo admin needs 'admin_actions' (django-admin-actions) in INSTALLED_APPS",
                  id="meepo.E008",
                  hint=f"Add 'admin_actions' to INSTALLED_APPS; see {doc_link('admin.md', 'set-up', 'use-it')}.")]
