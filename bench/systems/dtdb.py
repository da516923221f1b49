"""django-tasks-db (the ``django-tasks`` backport's database backend) on MariaDB: 2 ``db_worker`` processes.
No Redis, so no flush workload; no bulk push."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..services import ensure_database
from .base import System, Variant

SETTINGS = "bench.djangoproject.settings_dtdb"


class DjangoTasksDB(System):
    name = "dtdb"
    label = "django-tasks-db"
    modules = ("django_tasks", "django_tasks_db")
    distributions = ("django-tasks", "django-tasks-db")
    variants = (Variant("2w", "2 db_workers", 2, 1),)
    uses_redis = False

    def env(self) -> dict[str, str]:
        services = self.config.services
        return {"DJANGO_SETTINGS_MODULE": SETTINGS, "DATABASE_URL": services.database_url,
                "BENCH_DB_NAME": services.dtdb_db}

    def prepare(self) -> None:
        os.environ.update(self.env())
        ensure_database(self.config.services.database_url, self.config.services.dtdb_db)
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        self.reset()

    def push_one(self, numbers: Sequence[int]) -> None:
        from ..djangoproject.dtdb_tasks import noop

        for n in numbers:
            noop.enqueue(n)

    def worker_commands(self, variant: Variant) -> list[tuple[str, list[str]]]:
        return [(f"dtdb-{i}", [sys.executable, "-m", "django", "db_worker", "--no-reload", "--no-startup-delay",
                               "--verbosity", "0"]) for i in range(variant.processes)]

    def reset(self) -> None:
        from django.core.management import call_command

        call_command("flush", interactive=False, verbosity=0)
