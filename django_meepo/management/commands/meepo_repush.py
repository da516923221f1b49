"""``manage.py meepo_repush [id …] [--task T] [--status S] [--older-than AGE] [--dry-run]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_meepo import operations
from django_meepo.exceptions import MeepoError
from django_meepo.management.arguments import duration, job_ids, statuses
from django_meepo.management.progress import ProgressBar


class Command(BaseCommand):
    help = ("Force-repush jobs (any status → todo, due now, cid + 1, failure count 0), by id or by filter. "
            "Filters combine; at least one id or filter is required.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", metavar="id", help="job ids")
        parser.add_argument("--task", action="append", default=[], help="only jobs of this task (repeatable)")
        parser.add_argument("--status", action="append", default=[], help="only jobs in this status (repeatable)")
        parser.add_argument("--older-than", metavar="AGE",
                            help="only jobs not changed for AGE (90s, 15m, 2h, 7d): their updated_at is older")
        parser.add_argument("--dry-run", action="store_true", help="say what would be repushed; change nothing")

    def handle(self, *args: Any, **opts: Any) -> None:
        ids = job_ids(opts["ids"])
        wanted = statuses(opts["status"])
        age = duration(opts["older_than"], "--older-than") if opts["older_than"] is not None else None
        if not (ids or opts["task"] or wanted or age):
            raise CommandError("give job ids or a filter (--task, --status, --older-than); nothing was changed")
        try:
            selection = operations.select_jobs(ids=ids, tasks=opts["task"], statuses=wanted, unchanged_for=age)
        except (MeepoError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        by_status = operations.count_by_status(selection)
        total = sum(by_status.values())
        detail = ", ".join(f"{s} {n}" for s, n in sorted(by_status.items()))
        if opts["dry_run"]:
            self.stdout.write(f"would repush {total} job(s){': ' + detail if detail else ''} (dry run: nothing "
                              f"was changed)")
            return
        bar = ProgressBar("repushing", total, self.stderr, enabled=opts["verbosity"] >= 1)
        result = operations.repush_selection(selection, statuses=wanted or None, on_progress=bar.update)
        bar.close()
        self.stdout.write(f"repushed {result.changed} job(s)"
                          + (f"; {result.skipped} changed meanwhile and were left alone" if result.skipped else ""))
