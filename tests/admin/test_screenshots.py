"""Screenshots of the admin for docs/screenshots/ — run with MEEPO_SCREENSHOTS_DIR set (scripts/screenshots.sh).

Skipped otherwise: the end-to-end behaviour is tested by test_browser.py; this only takes the pictures.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from django_meepo.models import Attempt, Job, StatSample, Worker

from .browser import chromium, log_in
from .conftest import PASSWORD

OUT = os.environ.get("MEEPO_SCREENSHOTS_DIR")
WIDTH = int(os.environ.get("MEEPO_SCREENSHOTS_WIDTH", "1920"))  # e.g. 1280 to look at a narrower window
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not OUT, reason="set MEEPO_SCREENSHOTS_DIR to take screenshots")]

TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/django_meepo/execution.py", line 41, in run_job
    result = task.function(ctx)
  File "/srv/app/shop/jobs.py", line 18, in send_receipt
    smtp.send(message)
  File "/srv/app/shop/mail.py", line 77, in send
    raise ConnectionError("SMTP server smtp.internal:25 refused the connection")
ConnectionError: SMTP server smtp.internal:25 refused the connection"""


def demo_data() -> Job:
    now = timezone.now()
    Worker.objects.create(id="web-1:4711:9f3c21ab", hostname="web-1", pid=4711, tasks="record,other", parallel=8,
                          started_at=now - timedelta(hours=2), last_seen=now + timedelta(minutes=5),  # alive while shot
                          processed=18234, failed=12)
    Worker.objects.create(id="web-2:5120:07d1e2c4", hostname="web-2", pid=5120, tasks="record", parallel=4,
                          started_at=now - timedelta(days=1), last_seen=now - timedelta(minutes=20),
                          processed=912, failed=3)
    plan = [("record", "done", 30), ("record", "todo", 6), ("record", "doing", 3), ("record", "failed", 2),
            ("other", "done", 12), ("other", "todo", 2), ("other", "zombie", 1), ("manual", "failed", 1)]
    for task, status, n in plan:
        for i in range(n):
            job = Job.objects.push(task, json={"order": 1000 + i, "email": f"customer{i}@example.com"})
            fields: dict[str, object] = {"status": status}
            if status in ("done", "failed"):
                fields["finished_at"] = now - timedelta(seconds=20 * i)
            if status == "doing":
                fields.update(worker="web-1:4711:9f3c21ab", started_at=now, lease_until=now + timedelta(seconds=30),
                              progress_done=120 * (i + 1), progress_total=500, progress_note=f"order {1000 + i}: items",
                              progress_at=now)
            if status == "done" and i % 3 == 0:
                fields.update(progress_done=500, progress_total=500, progress_note="all items", progress_at=now)
            if status == "todo":
                fields["due_at"] = now - timedelta(seconds=95)
            Job.objects.filter(id=job.id).update(**fields)
    failed = Job.objects.push("record", json={"order": 1042, "email": "ada@example.com", "items": [
        {"sku": "MEEPO-1", "qty": 2}, {"sku": "MEEPO-7", "qty": 1}], "note": "gift wrap ✓"},
        idempotency_key="receipt-1042")
    Job.objects.filter(id=failed.id).update(status="failed", failed_times=3, attempts=3, cid=9,
                                            worker="web-1:4711:9f3c21ab", started_at=now - timedelta(seconds=4),
                                            finished_at=now - timedelta(seconds=3), last_error=TRACEBACK,
                                            progress_done=1, progress_total=2, progress_note="receipt rendered",
                                            progress_at=now - timedelta(seconds=3))
    for number, outcome, worker in ((1, "failed", "web-2:5120:07d1e2c4"), (2, "lease_expired", "web-2:5120:07d1e2c4"),
                                    (3, "failed", "web-1:4711:9f3c21ab")):
        start = now - timedelta(minutes=10 - 3 * number)
        Attempt.objects.create(job_id=failed.id, number=number, worker=worker, started_at=start,
                               finished_at=start + timedelta(seconds=2), outcome=outcome,
                               error=TRACEBACK if outcome == "failed" else "lease expired: no heartbeat for 30 s")
    _queue_only_todo_jobs()
    _chart_samples(now)
    return failed


def _chart_samples(now) -> None:  # type: ignore[no-untyped-def]
    """A day of per-minute samples for the dashboard's charts (a busy hour, a few failures, a backlog)."""
    import math

    start = now.replace(second=0, microsecond=0)
    StatSample.objects.bulk_create([StatSample(
        task=task, minute=start - timedelta(minutes=i), done=int(scale * (30 + 20 * math.sin(i / 9))),
        failed=(i % 11 == 0) * 3, depth=int(scale * (5 + 40 * max(0.0, math.sin(i / 25)))),
        oldest_due_seconds=float(i % 40), latency_p50=0.2 + 0.1 * math.sin(i / 7), latency_p95=1.2 + math.sin(i / 13),
        created_at=now) for task, scale in (("record", 1.0), ("other", 0.3)) for i in range(1, 1440)])


def _queue_only_todo_jobs() -> None:
    """Every push above was dispatched; as in a real queue, Redis should hold only the todo jobs."""
    from django_meepo.conf import get_settings
    from django_meepo.dispatch import redis_client
    from django_meepo.push import dispatch_now
    from django_meepo.states import Dispatchable

    client = redis_client()
    client.delete(*client.scan_iter(match=f"*{get_settings().key_prefix}:*"))
    dispatch_now([Dispatchable(t, i, c, p) for t, i, c, p in
                  Job.objects.filter(status="todo").values_list("task", "id", "cid", "priority")])


@pytest.mark.django_db(transaction=True)
def test_take_screenshots(live_server) -> None:  # type: ignore[no-untyped-def]
    out = Path(OUT or ".")
    out.mkdir(parents=True, exist_ok=True)
    User.objects.create_superuser("admin", password=PASSWORD)
    failed = demo_data()
    pages = {"list.png": "/admin/django_meepo/job/",
             "detail.png": f"/admin/django_meepo/job/{failed.id}/change/",
             "dashboard.png": "/admin/django_meepo/job/dashboard/", "workers.png": "/admin/django_meepo/worker/"}
    with chromium(WIDTH, 1200) as driver:
        log_in(driver, live_server.url, "admin", PASSWORD, "/admin/")
        driver.execute_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
        for name, page in pages.items():
            driver.set_window_size(WIDTH, 1200)
            driver.get(live_server.url + page)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(WIDTH, min(max(height, 700), 1500 if name == "list.png" else 2600))
            assert driver.save_screenshot(str(out / name))
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
