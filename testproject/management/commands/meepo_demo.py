"""``manage.py meepo_demo``: push demo jobs, consume them in this process, show progress and a summary."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.db.models import Count

from django_meepo.conf import get_settings
from django_meepo.models import Job
from django_meepo.registry import get_task
from django_meepo.states import Status
from django_meepo.worker import Worker


def bar(done: int, total: int, started: float, width: int = 32) -> str:
    fraction = done / total if total else 1.0
    filled = int(width * fraction)
    rate = done / max(time.monotonic() - started, 1e-6)
    return f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} jobs done  {rate:,.0f}/s"


def services() -> str:
    """Which database and which dispatcher this run uses, in words."""
    db = connection.settings_dict
    vendor = {"mysql": "MariaDB/MySQL", "postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(connection.vendor,
                                                                                           connection.vendor)
    where = db["NAME"] if connection.vendor == "sqlite" else f"{db.get('HOST') or 'localhost'} {db['NAME']}"
    conf = get_settings()
    if conf.dispatch == "database":
        dispatch = "the database dispatcher (no Redis: workers claim jobs straight from the table)"
    else:
        caches: dict[str, Any] = settings.CACHES
        location = caches.get(conf.redis, {}).get("LOCATION", conf.redis)
        dispatch = f"Redis at {location} (key prefix {conf.key_prefix!r}; the database if Redis stops answering)"
    return f"database {vendor} ({where}), dispatch through {dispatch}"


class Command(BaseCommand):
    help = "Push demo jobs and consume them here, with a progress bar and a summary."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--jobs", type=int, default=2000, help="how many jobs to push (default 2000)")
        parser.add_argument("--parallel", type=int, default=4, help="worker threads (default 4)")

    def handle(self, *args: Any, **opts: Any) -> None:
        total = opts["jobs"]
        self.stdout.write(f"django-meepo demo: {services()}")
        get_task("demo")
        Job.objects.filter(task="demo").delete()

        started = time.monotonic()
        with transaction.atomic():
            jobs = Job.objects.push_many("demo", [f"demo job {i}".encode() for i in range(total)])
        push_seconds = time.monotonic() - started
        how = "one transaction" + (", one Redis dispatch" if get_settings().dispatch == "redis" else "")
        self.stdout.write(f"  pushed {len(jobs)} jobs in {push_seconds:.2f} s ({how})")

        worker = Worker([get_task("demo")], parallel=opts["parallel"], grace=10)
        thread = threading.Thread(target=worker.run, name="demo-worker")
        consume_started = time.monotonic()
        thread.start()
        ids = [j.id for j in jobs]
        demo_jobs = Job.objects.filter(task="demo")
        done = 0
        while done < total and thread.is_alive():
            done = demo_jobs.filter(status__in=[Status.DONE, Status.FAILED]).count()
            sys.stderr.write(bar(done, total, consume_started))
            sys.stderr.flush()
            if done < total:
                time.sleep(0.2)
        elapsed = time.monotonic() - consume_started
        worker.request_stop()
        thread.join()
        sys.stderr.write("\n")

        counts = dict(demo_jobs.values_list("status").annotate(n=Count("id")).order_by())
        self.stdout.write(self.style.SUCCESS(
            f"  consumed {done} jobs in {elapsed:.2f} s ({done / max(elapsed, 1e-6):,.0f} jobs/s with "
            f"{opts['parallel']} threads)"))
        self.stdout.write("  by status: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        sample = Job.objects.filter(id__in=ids[:1]).values_list("id", "result").first()
        if sample:
            self.stdout.write(f"  job {sample[0]} returned {sample[1]!r}")
