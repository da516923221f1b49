from __future__ import annotations

import difflib
import logging
from typing import Any

from django.apps import AppConfig

log = logging.getLogger("django_meepo.apps")


def warn_unknown_keys(raw: Any) -> list[str]:
    """Log one WARNING naming each key of ``MEEPO`` that django-meepo does not know (a typo is otherwise ignored
    silently by every process that runs no system checks: web servers, shells); return those keys.

    Called once per process from :meth:`MeepoConfig.ready`. It only reads the setting and logs; it builds
    nothing, so it cannot fail start-up. A ``MEEPO`` that is not a dict is left to check meepo.E001."""
    from .spec import SETTINGS

    if not isinstance(raw, dict):
        return []
    unknown = sorted(str(key) for key in raw if key not in SETTINGS)
    for key in unknown:
        close = difflib.get_close_matches(key.upper(), list(SETTINGS), n=1)
        log.warning("MEEPO has an unknown key %r, which django-meepo ignores%s (known keys: %s; check meepo.E001)",
                    key, f": did you mean {close[0]!r}?" if close else "", ", ".join(sorted(SETTINGS)))
    return unknown


class MeepoConfig(AppConfig):
    name = "django_meepo"
    verbose_name = "Meepo jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Wire checks and signals and warn about unknown ``MEEPO`` keys; build no singletons."""
        from django.core.signals import setting_changed

        from . import checks  # noqa: F401 - registers the system checks
        from .conf import raw_settings
        from .dispatch import reset_producer_dispatcher
        from .registry import clear_cache
        from .tasks.wiring import connect as connect_tasks

        def on_setting_changed(setting: str, **kwargs: object) -> None:
            if setting in ("MEEPO", "CACHES"):
                clear_cache()
                reset_producer_dispatcher()

        setting_changed.connect(on_setting_changed, weak=False, dispatch_uid="django_meepo.settings")
        connect_tasks()  # the Tasks backend, when Django's Tasks framework is installed
        warn_unknown_keys(raw_settings())  # in every process, not only where checks run
