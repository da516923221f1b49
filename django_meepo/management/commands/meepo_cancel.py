"""``manage.py meepo_cancel id [id …] [--note TEXT]``: cancel jobs by id (``api.cancel_many``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_meepo import api
from django_meepo.exceptions import MeepoError
from django_meepo.management.arguments import job_ids

# How many refusals are listed (the count is always given).
SHOWN = 20


class Command(BaseCommand):
    help = ("Cancel jobs by id: todo, doing or zombie → cancelled (cid + 1). A queued job never runs; a running "
            "one is fenced (its commit is refused) and sees job.cancelled at its next heartbeat. Jobs already "
            "done, failed or cancelled are left alone and listed. An unknown id changes nothing at all.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="+", metavar="id", help="job ids")
        parser.add_argument("--task", default=None, help="the task of the ids, when it keeps its jobs in a table of "
                                                         "its own (ids are unique per table)")
        parser.add_argument("--note", default="", help="why (recorded as the job's last error; default "
                                                       "'cancelled by an operator')")

    def handle(self, *args: Any, **opts: Any) -> None:
        ids = job_ids(opts["ids"])
        try:
            result = api.cancel_many(ids, note=opts["note"], task=opts["task"])
        except MeepoError as exc:
            raise CommandError(str(exc)) from exc
        for message in result.refused[:SHOWN]:
            self.stderr.write(f"left alone: {message}")
        more = len(result.refused) - SHOWN
        if more > 0:
            self.stderr.write(f"… and {more} more left alone")
        self.stdout.write(f"cancelled {len(result.cancelled)} job(s)"
                          + (f"; {len(result.refused)} left alone" if result.refused else ""))
