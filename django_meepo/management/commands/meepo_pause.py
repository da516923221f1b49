"""``manage.py meepo_pause TASK [TASK …] [--by WHO]``: no worker claims these tasks' jobs until resumed."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_meepo import pauses
from django_meepo.exceptions import MeepoError


class Command(BaseCommand):
    help = ("Pause tasks: workers claim none of their jobs (within about a second) until meepo_resume; running "
            "jobs finish, pushes are still accepted, the pause survives restarts. Unknown names change nothing.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tasks", nargs="+", metavar="task", help="task names")
        parser.add_argument("--by", default=None, help="who paused (default: the login name), shown in the admin")

    def handle(self, *args: Any, **opts: Any) -> None:
        by = opts["by"] if opts["by"] is not None else f"{_login()} (meepo_pause)"
        try:
            newly = pauses.pause(*opts["tasks"], by=by)
        except (MeepoError, ValueError) as exc:
            raise CommandError(f"{exc}; nothing was paused") from exc
        already = [t for t in dict.fromkeys(opts["tasks"]) if t not in newly]
        if newly:
            self.stdout.write(f"paused {', '.join(newly)}")
        if already:
            self.stdout.write(f"already paused: {', '.join(already)}")


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in this environment
        return "unknown"
