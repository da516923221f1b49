"""``manage.py meepo_stats``: the dashboard's numbers in the terminal (a table, or ``--json``; ``--watch N``);
``--job ID``: one job instead, with its progress bar."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_meepo import jobview, stats
from django_meepo.exceptions import InvalidJob, JobNotFound
from django_meepo.management.arguments import positive_int, positive_number
from django_meepo.states import ALL_STATUSES


def table(snapshot: stats.Snapshot) -> str:
    head = ["task", *ALL_STATUSES, "oldest due", "in redis", "done/failed 1m", "done/failed 1h"]
    rows = [[t.name + ("" if t.declared else " (undeclared)"), *(str(t.counts[s]) for s in ALL_STATUSES),
             stats.format_age(t.oldest_due_seconds), "?" if t.queued_in_redis is None else str(t.queued_in_redis),
             f"{t.done_last_minute}/{t.failed_last_minute}", f"{t.done_last_hour}/{t.failed_last_hour}"]
            for t in snapshot.tasks]
    rows.append(["all", *(str(snapshot.totals[s]) for s in ALL_STATUSES), "", "", "", ""])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             .rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    out = [f"meepo stats at {snapshot.taken_at:%Y-%m-%d %H:%M:%S} UTC", *lines, ""]
    if snapshot.redis_error:
        out.append(f"Redis queue lengths unavailable: {snapshot.redis_error}")
    live = snapshot.live_workers
    out.append(f"workers: {len(live)} alive, {len(snapshot.workers) - len(live)} stale")
    for w in snapshot.workers:
        held = " ".join(f"{j.task}#{j.id}" for j in w.jobs) + (" …" if w.holding > len(w.jobs) else "")
        out.append(f"  {w.id} [{'alive' if w.alive else 'stale'}] tasks={','.join(w.tasks)} "
                   f"{w.counts} holding={w.holding}{': ' + held if held else ''}")
    if snapshot.orphans:
        out.append(f"doing, held by no live worker: {len(snapshot.orphans)} (rescued when their lease expires)")
    out += schedule_lines(snapshot.schedules)
    return "\n".join(out)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def schedule_lines(schedules: tuple[stats.ScheduleStats, ...]) -> list[str]:
    """One line per schedule: its task, cron (zone, missed policy), last tick (its job) and next tick."""
    if not schedules:
        return []
    lines = [f"schedules: {len(schedules)}"]
    for s in schedules:
        job = f" (job {s.last_job_id})" if s.last_job_id is not None else ""
        lines.append(f"  {s.name} task={s.task} cron={s.cron!r} ({s.timezone}, missed: {s.missed}) "
                     f"last={_when(s.last_tick)}{job} next={_when(s.next_tick)}")
    return lines


class Command(BaseCommand):
    help = "Show the queue's numbers: jobs per task and status, backlog age, Redis queues, throughput, workers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON (one object per refresh)")
        parser.add_argument("--watch", metavar="N", help="refresh every N seconds until interrupted")
        parser.add_argument("--iterations", metavar="K", help="with --watch: stop after K refreshes")
        parser.add_argument("--job", metavar="ID", help="show this one job (its state and progress) instead; "
                                                        "TASK:ID for a task with a table of its own")

    def handle(self, *args: Any, **opts: Any) -> None:
        interval = positive_number(opts["watch"], "--watch") if opts["watch"] is not None else None
        limit = positive_int(opts["iterations"], "--iterations") if opts["iterations"] is not None else None
        task, _, digits = str(opts["job"]).rpartition(":") if opts["job"] is not None else ("", "", "")
        job_id = positive_int(digits, "--job") if opts["job"] is not None else None
        self._task = task or None
        shown = 0
        try:
            while True:
                data, text = self._job(job_id) if job_id is not None else self._snapshot()
                if opts["json"]:
                    self.stdout.write(json.dumps(data, sort_keys=True))
                else:
                    if interval is not None and self.stdout.isatty():
                        self.stdout.write("\x1b[2J\x1b[H", ending="")
                    self.stdout.write(text + ("\n" if interval is not None else ""))
                shown += 1
                if interval is None or (limit is not None and shown >= limit):
                    return
                time.sleep(interval)
        except KeyboardInterrupt:
            return

    def _snapshot(self) -> tuple[dict[str, Any], str]:
        snapshot = stats.collect()
        return snapshot.to_dict(), table(snapshot)

    def _job(self, job_id: int) -> tuple[dict[str, Any], str]:
        try:
            found = jobview.view(job_id, task=self._task)
        except (JobNotFound, InvalidJob) as exc:
            raise CommandError(str(exc)) from None
        return found.to_dict(), "\n".join(found.lines())
