"""django-meepo, driven through its public API (``Job.objects.push``, ``push_many``) and its commands
(``meepo_consume``, ``meepo_sweep``), with the settings in ``bench/djangoproject/settings_meepo.py``."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from ..djangoproject import MEEPO_NOOP
from ..djangoproject.hooks import ENV as HOOKS_ENV
from ..djangoproject.hooks import NONE
from ..services import delete_matching, ensure_database, list_entries
from .base import System, Variant

log = logging.getLogger(__name__)

SETTINGS = "bench.djangoproject.settings_meepo"


class Meepo(System):
    name = "meepo"
    label = "django-meepo"
    modules = ("django_meepo",)
    distributions = ("django-meepo",)
    variants = (Variant("1x4", "1 process × 4 threads", 1, 4), Variant("2x2", "2 processes × 2 threads", 2, 2))
    bulk = "push_many"
    hooks = NONE  # $BENCH_HOOKS of its processes: neither optional extra (the hooks workload varies it)

    def env(self) -> dict[str, str]:
        services = self.config.services
        return {"DJANGO_SETTINGS_MODULE": SETTINGS, "DATABASE_URL": services.database_url,
                "BENCH_DB_NAME": services.meepo_db, "REDIS_URL": self.broker_url, "MEEPO_KEY_PREFIX": self.prefix,
                HOOKS_ENV: self.hooks}

    def prepare(self) -> None:
        os.environ.update(self.env())
        ensure_database(self.config.services.database_url, self.config.services.meepo_db)
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        self.reset()

    def push_one(self, numbers: Sequence[int]) -> None:
        from django_meepo import Job

        for n in numbers:
            Job.objects.push(MEEPO_NOOP, str(n).encode())

    def push_bulk(self, numbers: Sequence[int]) -> None:
        from django_meepo import Job

        for chunk in self.chunks(numbers):
            Job.objects.push_many(MEEPO_NOOP, [str(n).encode() for n in chunk])

    def consume_command(self, task: str, slots: int) -> list[str]:
        return [sys.executable, "-m", "django", "meepo_consume", task, "--parallel", str(slots)]

    def worker_commands(self, variant: Variant) -> list[tuple[str, list[str]]]:
        return [(f"meepo-{variant.key}-{i}", self.consume_command(MEEPO_NOOP, variant.slots))
                for i in range(variant.processes)]

    def sweep_command(self) -> list[str]:
        return [sys.executable, "-m", "django", "meepo_sweep"]

    def queued(self) -> int:
        """Entries waiting in Redis under this prefix (django-meepo's queues are Redis lists)."""
        return list_entries(self.broker_url, f"*{self.prefix}:*")  # the tagged {P:T}:… keys and the global P:… ones

    def forget_redis(self) -> int:
        """Delete every Redis key under this prefix: what Redis loses in a flush or an empty restart."""
        return delete_matching(self.broker_url, f"*{self.prefix}:*")  # the tagged {P:T}:… keys and the global P:… ones

    def reset(self) -> None:
        from django.core.management import call_command

        self.forget_redis()
        call_command("flush", interactive=False, verbosity=0)
