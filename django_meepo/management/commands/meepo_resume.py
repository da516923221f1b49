"""``manage.py meepo_resume TASK [TASK …]``: workers claim these tasks' jobs again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_meepo import pauses
from django_meepo.exceptions import MeepoError


class Command(BaseCommand):
    help = ("Resume paused tasks: workers claim their jobs again within about a second. Unknown names change "
            "nothing.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tasks", nargs="+", metavar="task", help="task names")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            resumed = pauses.resume(*opts["tasks"])
        except (MeepoError, ValueError) as exc:
            raise CommandError(f"{exc}; nothing was resumed") from exc
        not_paused = [t for t in dict.fromkeys(opts["tasks"]) if t not in resumed]
        if resumed:
            self.stdout.write(f"resumed {', '.join(resumed)}")
        if not_paused:
            self.stdout.write(f"not paused: {', '.join(not_paused)}")
