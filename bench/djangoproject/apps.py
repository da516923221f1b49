from __future__ import annotations

import os

from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench.djangoproject"
    label = "bench"
    verbose_name = "django-meepo benchmark"

    def ready(self) -> None:
        """Count the statements this process sends to MariaDB when the harness asks for it (see sqlcount)."""
        from bench import sqlcount

        if os.environ.get(sqlcount.ENV_KEY):
            sqlcount.install()
