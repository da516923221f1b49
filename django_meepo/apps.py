from __future__ import annotations

from django.apps import AppConfig


class MeepoConfig(AppConfig):
    name = "django_meepo"
    verbose_name = "Meepo jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Wire checks and signals only; build no singletons."""
        from django.core.signals import setting_changed

        from . import checks  # noqa: F401 - registers the system checks
        from .dispatch import reset_producer_dispatcher
        from .registry import clear_cache
        from .tasks.wiring import connect as connect_tasks

        def on_setting_changed(setting: str, **kwargs: object) -> None:
            if setting in ("MEEPO", "CACHES"):
                clear_cache()
                reset_producer_dispatcher()

        setting_changed.connect(on_setting_changed, weak=False, dispatch_uid="django_meepo.settings")
        connect_tasks()  # the Tasks backend, when Django's Tasks framework is installed
