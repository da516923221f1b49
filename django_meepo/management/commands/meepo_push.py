"""``manage.py meepo_push <task> [payload]``: push one job from the command line; prints its id."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_meepo.exceptions import MeepoError
from django_meepo.management.arguments import non_negative_number
from django_meepo.push import push


class Command(BaseCommand):
    help = ("Push a job. The payload is the PAYLOAD argument (UTF-8), a file (--file PATH) or standard input "
            "(PAYLOAD or PATH '-'); none means an empty payload. --json checks that it is JSON.")

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """A parser that takes the payload after an option too (``meepo_push emails --json '{…}'``): plain
        argparse gives the optional PAYLOAD up before the options and then calls it unrecognized."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.parse_args = parser.parse_intermixed_args  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task", help="the task's name")
        parser.add_argument("payload", nargs="?", help="the payload as text, or '-' to read standard input")
        parser.add_argument("--file", metavar="PATH", help="read the payload from a file ('-': standard input)")
        parser.add_argument("--json", action="store_true", help="the payload is JSON: parse it, store it compactly")
        parser.add_argument("--delay", metavar="SECONDS", help="run it no sooner than SECONDS from now (0: now)")
        parser.add_argument("--priority", type=str, default="0", help="-100 … 100 (default 0)")
        parser.add_argument("--idempotency-key", metavar="KEY", help="push at most once per task and KEY")

    def _payload(self, opts: dict[str, Any]) -> bytes:
        if opts["payload"] is not None and opts["file"] is not None:
            raise CommandError("give the payload either as an argument or with --file, not both")
        source = opts["file"] if opts["file"] is not None else opts["payload"]
        if source is None:
            return b""
        if source == "-":
            return sys.stdin.buffer.read()
        if opts["file"] is None:
            return source.encode()
        try:
            return Path(source).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read --file {source!r}: {exc.strerror}") from exc

    def handle(self, *args: Any, **opts: Any) -> None:
        data = self._payload(opts)
        kwargs: dict[str, Any] = {"idempotency_key": opts["idempotency_key"]}
        if opts["delay"] is not None:
            kwargs["delay"] = non_negative_number(opts["delay"], "--delay")
        try:
            kwargs["priority"] = int(opts["priority"])
        except ValueError:
            raise CommandError(f"--priority must be an integer from -100 to 100, not {opts['priority']!r}") from None
        try:
            if opts["json"]:
                try:
                    value = json.loads(data)
                except ValueError as exc:
                    raise CommandError(f"--json: the payload is not JSON ({exc})") from exc
                job = push(opts["task"], json=value, **kwargs)
            else:
                job = push(opts["task"], data, **kwargs)
        except (MeepoError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        existing = getattr(job, "_meepo_created", True) is False
        self.stdout.write(str(job.id))
        if existing:
            self.stderr.write(f"job {job.id} already existed with idempotency key {opts['idempotency_key']!r}; "
                              f"nothing was pushed")
