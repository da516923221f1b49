"""``manage.py meepo_purge --days N``: delete finished (done, failed) jobs older than N days, in batches."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_meepo import purge
from django_meepo.conf import get_settings
from django_meepo.management.arguments import positive_int, positive_number, statuses
from django_meepo.management.progress import ProgressBar
from django_meepo.registry import is_known
from django_meepo.states import FINISHED_STATUSES
from django_meepo.tables import for_task


class Command(BaseCommand):
    help = ("Delete done and failed jobs (with their attempts) that finished more than N days ago, in batches. "
            "Default N: MEEPO['RETENTION_DAYS'].")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", metavar="N", help="finished more than N days ago (fractions allowed)")
        parser.add_argument("--task", action="append", default=[], help="only jobs of this task (repeatable)")
        parser.add_argument("--status", action="append", default=[], help="done or failed (default: both)")
        parser.add_argument("--batch-size", metavar="ROWS", default=str(purge.BATCH_SIZE),
                            help=f"rows per DELETE (default {purge.BATCH_SIZE})")
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["days"] is not None:
            days = positive_number(opts["days"], "--days")
        elif (retention := get_settings().retention_days) is not None:
            days = float(retention)
        else:
            raise CommandError("give --days N (or set MEEPO['RETENTION_DAYS']); nothing was deleted")
        wanted = statuses(opts["status"], allowed=FINISHED_STATUSES) or list(FINISHED_STATUSES)
        batch = positive_int(opts["batch_size"], "--batch-size")
        for name in opts["task"]:
            if not is_known(name) and not for_task(name).model.objects.using(get_settings().database).filter(
                    task=name).exists():
                raise CommandError(f"unknown task {name!r}: it is not declared and no job of it exists")
        cutoff = purge.cutoff_for(days)
        selection = purge.selections(cutoff, tasks=opts["task"], statuses=wanted)
        total = sum(qs.count() for qs in selection)
        if opts["dry_run"]:
            self.stdout.write(f"would delete {total} finished job(s) that finished before {cutoff:%Y-%m-%d %H:%M:%S}"
                              f" UTC (dry run: nothing was deleted)")
            return
        bar = ProgressBar("deleting", total, self.stderr, enabled=opts["verbosity"] >= 1)
        result = purge.purge_all(selection, batch_size=batch, on_progress=bar.update)
        bar.close()
        self.stdout.write(f"deleted {result.deleted} finished job(s) and {result.attempts_deleted} attempt(s) "
                          f"that finished before {cutoff:%Y-%m-%d %H:%M:%S} UTC")
