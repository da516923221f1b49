from __future__ import annotations

import os

from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench.djangoproject"
    label = "bench"
    verbose_name = "django-meepo benchmark"

    def ready(self) -> None:
        """Count the statements this process sends to MariaDB when the harness asks for it (see sqlcount); check
        the optional hooks are as ``$BENCH_HOOKS`` asks, and start the tracer it asks for (see hooks)."""
        from bench import sqlcount

        from . import hooks

        hooks.check()
        if os.environ.get(sqlcount.ENV_KEY):
            sqlcount.install()
