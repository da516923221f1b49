"""One job as ``manage.py meepo_stats --job ID`` shows it: its state, counters, times and progress bar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .conf import get_settings
from .exceptions import JobNotFound
from .models import Job
from .states import validate_id
from .tables import for_task

FIELDS = ("id", "task", "status", "cid", "priority", "attempts", "failed_times", "rescues", "worker", "created_at",
          "updated_at", "due_at", "started_at", "finished_at", "lease_until", "progress_done", "progress_total",
          "progress_note", "progress_at")


@dataclass(frozen=True, slots=True)
class JobView:
    """A job's row without its payload, result or error (``Job`` fields of the same names)."""

    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 text."""
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in self.values.items()}

    def lines(self) -> list[str]:
        v = self.values
        out = [f"job {v['id']}: {v['task']} {v['status']} (cid {v['cid']}, priority {v['priority']})",
               f"  attempts {v['attempts']}, failed {v['failed_times']} time(s), rescued {v['rescues']} time(s)"
               + (f", worker {v['worker']}" if v["worker"] else "")]
        for name in ("created_at", "due_at", "started_at", "finished_at", "lease_until"):
            if v[name] is not None:
                out.append(f"  {name.replace('_at', '').replace('_', ' ')}: {v[name]:%Y-%m-%d %H:%M:%S} UTC")
        out.append(f"  progress: {progress_bar(v['progress_done'], v['progress_total'])}"
                   + (f"  {v['progress_note']}" if v["progress_note"] else "")
                   + (f"  (reported {v['progress_at']:%Y-%m-%d %H:%M:%S} UTC)" if v["progress_at"] else ""))
        return out


def progress_bar(done: int | None, total: int | None, width: int = 30) -> str:
    """``[#########.....................]  30% 300/1000``, or "-" for a job that never reported progress."""
    if done is None or total is None:
        return "-"
    share = min(1.0, done / total) if total else 0.0
    filled = int(share * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {share * 100:3.0f}% {done}/{total}"


def view(job_id: object, using: str | None = None, task: str | None = None) -> JobView:
    """The job ``job_id`` on ``using`` (default ``MEEPO["DATABASE"]``) — of ``task``'s table when given (ids are
    unique per table, tables.py), else of the shared one; JobNotFound when there is none."""
    ident = validate_id(job_id)
    model = for_task(task).model if task else Job
    qs = model.objects.using(using or get_settings().database).filter(id=ident)
    row = (qs.filter(task=task) if task else qs).values(*FIELDS).first()
    if row is None:
        raise JobNotFound(f"no job with id {ident}" + (f" of task {task!r}" if task else ""))
    return JobView(row)
