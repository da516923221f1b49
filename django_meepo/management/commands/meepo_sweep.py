"""``manage.py meepo_sweep``: rescue expired leases and re-dispatch what Redis lost, for every task."""

from __future__ import annotations

import os
import signal
import socket
import threading
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_meepo.conf import get_settings
from django_meepo.dispatch import process_dispatcher
from django_meepo.exceptions import MeepoError
from django_meepo.registry import all_tasks, get_task
from django_meepo.sweeper import Sweeper


class Command(BaseCommand):
    help = "Sweep: expired leases go to their task's zombie destination; lost dispatches are redone."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tasks", nargs="*", metavar="task", help="tasks to sweep (default: all)")
        parser.add_argument("--once", action="store_true", help="one full sweep, then exit")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            tasks = [get_task(n) for n in opts["tasks"]] if opts["tasks"] else all_tasks()
        except MeepoError as exc:
            raise CommandError(str(exc)) from exc
        if not tasks:
            raise CommandError("no tasks are declared (MEEPO['TASKS'] or @django_meepo.task)")
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        sweeper = Sweeper(tasks, dispatcher=process_dispatcher(), using=get_settings().database, holder=holder)
        if opts["once"]:
            sweeper._last_period.clear()
            report = sweeper.tick()
            self.stdout.write(f"leading {report.leading} task(s): {report.expired} expired lease(s) handled, "
                              f"{report.redispatched} job(s) re-dispatched, {report.recovered} in-flight "
                              f"entr(y/ies) recovered, {report.scheduled} scheduled job(s) pushed")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        self.stderr.write(f"meepo: sweeper {holder} sweeping {', '.join(t.name for t in tasks)}")
        sweeper.run(stop)
