"""The dashboard's charts: throughput, queue depth and pickup latency of one task over the last hour or day.

The samples come from ``samples.py`` (one row per task per minute, written by the leading sweeper) in one query:
every task's samples of the window, so that the task selector can list the tasks that have some. ``?chart_task=``
picks the task (default: the first declared, else the first sampled), ``?window=hour`` or ``day`` the window.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest

from ..charts import Series, line_chart
from ..models import StatSample
from ..registry import task_names
from ..samples import minute_of

WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def chart_context(request: HttpRequest, now: datetime, *, using: str) -> dict[str, Any]:
    """The template's ``charts`` block: the task and window chosen, the choices, and three SVG charts."""
    window = request.GET.get("window", "hour")
    if window not in WINDOWS:
        window = "hour"
    end = minute_of(now) + timedelta(minutes=1)
    start = end - WINDOWS[window]
    by_task: dict[str, list[StatSample]] = defaultdict(list)
    for sample in (StatSample.objects.using(using).filter(minute__gte=start, minute__lt=end)
                   .order_by("task", "minute")):
        by_task[sample.task].append(sample)
    tasks = sorted({*task_names(), *by_task})
    chosen = request.GET.get("chart_task", "")
    if chosen not in tasks:
        chosen = next((t for t in tasks if t in by_task), tasks[0] if tasks else "")
    rows = by_task.get(chosen, [])

    def values(field: str) -> dict[datetime, float | None]:
        return {s.minute: getattr(s, field) for s in rows}

    span = f"{chosen}, last {window} (UTC)"
    charts = [
        line_chart([Series("done", values("done")), Series("failed", values("failed"))], start=start, end=end,
                   title=f"Jobs finished per minute: {span}", chart_id="meepo-chart-throughput"),
        line_chart([Series("due todo", values("depth"))], start=start, end=end,
                   title=f"Queue depth (due todo jobs): {span}", chart_id="meepo-chart-depth"),
        line_chart([Series("p50", values("latency_p50")), Series("p95", values("latency_p95"))], start=start,
                   end=end, unit="s", title=f"Pickup latency (seconds from due to started): {span}",
                   chart_id="meepo-chart-latency"),
    ]
    return {"chart_tasks": tasks, "chart_task": chosen, "chart_window": window, "chart_windows": list(WINDOWS),
            "charts": charts, "chart_samples": len(rows)}
