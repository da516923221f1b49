"""``manage.py meepo_consume <task> [<task> …]``: run a worker (and, unless --no-sweep, a sweeper)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_meepo import outbox
from django_meepo.checks import REDIS_TAG, TABLES_TAG
from django_meepo.conf import get_settings
from django_meepo.exceptions import MeepoError
from django_meepo.registry import get_task
from django_meepo.worker import RECYCLE, Worker


def _positive(kind: type) -> Any:
    def parse(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise ValueError(value) from None
        if number <= 0:
            raise ValueError(value)
        return number

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(value)
    return int(value)


_port.__name__ = "port number (1-65535)"


class Command(BaseCommand):
    help = "Consume jobs of the given tasks: claim, run, commit; SIGTERM drains and exits 0."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tasks", nargs="+", metavar="task", help="task names to consume")
        parser.add_argument("--parallel", type=_positive(int),
                            help="threads: concurrent jobs in all (default: the sum of the tasks' PARALLEL); each "
                                 "task still runs at most its own PARALLEL at once")
        parser.add_argument("--no-sweep", action="store_true", help="do not run a sweeper in this process")
        parser.add_argument("--max-jobs", type=_positive(int), help="replace this process after N jobs")
        parser.add_argument("--max-memory", type=_positive(float), metavar="MB",
                            help="replace this process once its RSS exceeds MB megabytes")
        parser.add_argument("--grace", type=float, default=30.0,
                            help="seconds running jobs get to finish on shutdown (default 30)")
        parser.add_argument("--no-recycle", action="store_true",
                            help="exit (code 75) instead of re-executing itself when it must be replaced")
        parser.add_argument("--metrics-port", type=_port, metavar="PORT",
                            help="serve Prometheus metrics on this port (needs the [metrics] extra)")
        parser.add_argument("--metrics-addr", default="0.0.0.0", metavar="ADDR",
                            help="address the metrics port listens on (default 0.0.0.0)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            tasks = [get_task(name) for name in dict.fromkeys(opts["tasks"])]
        except MeepoError as exc:
            raise CommandError(str(exc)) from exc
        if opts["grace"] < 0:
            raise CommandError(f"--grace must be >= 0, not {opts['grace']}")
        _log_to_stderr(opts["verbosity"])
        if opts["metrics_port"] is not None:
            self._serve_metrics(opts["metrics_port"], opts["metrics_addr"])
        call_command("check", tags=[REDIS_TAG, TABLES_TAG], deploy=True, databases=[get_settings().database],
                     fail_level="ERROR", stdout=self.stderr)
        worker = Worker(tasks, parallel=opts["parallel"], sweep=not opts["no_sweep"], max_jobs=opts["max_jobs"],
                        max_memory_mb=opts["max_memory"], grace=opts["grace"])
        self._install_signals(worker)
        self.stderr.write(f"meepo: worker {worker.id} consuming {', '.join(t.name for t in tasks)}")
        outcome = worker.run()
        if worker.abandoned and outcome != RECYCLE:
            # Jobs that overran the grace period were handed back; their threads cannot be stopped and must not
            # go on beside their next run: leave now that the hand-back is committed.
            self.stderr.write(f"meepo: {worker.abandoned} running job(s) were handed back; exiting at once")
            outbox.flush()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        if outcome == RECYCLE:
            if opts["no_recycle"]:
                sys.exit(75)
            self.stderr.write(f"meepo: replacing the worker process ({worker.recycle_reason})")
            outbox.flush()  # exec runs no atexit handler: the drain's hand-backs must be dispatched first
            sys.stdout.flush()
            sys.stderr.flush()
            _close_on_exec()
            os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])

    def _serve_metrics(self, port: int, addr: str) -> None:
        """Start the metrics server before the worker, so a missing extra or a taken port fails at once."""
        from django_meepo import metrics

        if not metrics.ENABLED:
            raise CommandError(f"--metrics-port: {metrics.MISSING_MESSAGE}")
        from django_meepo.metrics.server import serve

        try:
            serve(port, addr)
        except OSError as exc:
            raise CommandError(f"--metrics-port {port}: cannot listen on {addr}:{port}: {exc}") from exc
        self.stderr.write(f"meepo: serving metrics on http://{addr}:{port}/metrics")

    def _install_signals(self, worker: Worker) -> None:
        def handler(signum: int, frame: Any) -> None:
            if worker.stop_requested:
                outbox.flush(1.0)
                os._exit(1)  # second signal: leave now; running jobs come back through their leases
            worker.request_stop()  # also while the worker is being replaced: then it exits and is not replaced

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def _log_to_stderr(verbosity: int) -> None:
    """Show the worker's INFO records (start, stop, hand-backs with how many) on stderr when the project's
    LOGGING sends ``django_meepo`` nowhere: Python's last-resort handler would print WARNING and above only, so a
    new project saw nothing at shutdown. A project that configures a handler (on ``django_meepo`` or an ancestor
    such as the root logger) keeps its own; ``-v 0`` adds nothing."""
    logger = logging.getLogger("django_meepo")
    if verbosity < 1 or logger.hasHandlers():
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def _close_on_exec() -> None:
    """Let exec close every inherited descriptor (database and Redis sockets of threads that cannot be
    joined, such as a job over its time limit), so the new process starts without leaked connections."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2:
            with contextlib.suppress(OSError):
                os.set_inheritable(fd, False)
