"""The dashboard's charts (rendered on the server from StatSample rows) and the dashboard's app-list entry."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_meepo.clock import db_now
from django_meepo.models import StatSample
from django_meepo.samples import minute_of

from .conftest import staff

pytestmark = pytest.mark.django_db
URL = "admin:django_meepo_job_dashboard"


def sample(task: str, minute: datetime, done: int, **fields: float) -> StatSample:
    return StatSample.objects.create(task=task, minute=minute, done=done, failed=fields.pop("failed", 0),
                                     created_at=minute, **fields)


def chart(html: str, chart_id: str) -> str:
    found = re.search(rf'<svg[^>]* id="{chart_id}".*?</svg>', html, re.S)
    assert found, f"no SVG {chart_id}"
    return found.group(0)


def drawn(svg: str) -> int:
    return sum(int(n) for n in re.findall(r'data-points="(\d+)"', svg))


def test_the_charts_show_the_chosen_tasks_samples(viewer_client: Client) -> None:
    now = minute_of(db_now("default"))
    for i in range(1, 11):
        sample("record", now - timedelta(minutes=i), done=i, failed=1, depth=3 * i, latency_p50=0.5,
               latency_p95=2.0)
    sample("other", now - timedelta(minutes=3), done=7)
    sample("record", now - timedelta(hours=3), done=99)  # outside the last hour, inside the last day
    response = viewer_client.get(reverse(URL), {"chart_task": "record"})
    html = response.content.decode()
    assert response.status_code == 200
    throughput = chart(html, "meepo-chart-throughput")
    assert drawn(throughput) == 20  # done and failed, 10 minutes each
    assert "Jobs finished per minute: record, last hour" in throughput
    assert drawn(chart(html, "meepo-chart-depth")) == 10
    assert drawn(chart(html, "meepo-chart-latency")) == 20
    assert '<strong class="meepo-chart-choice">record</strong>' in html
    assert "?chart_task=other&amp;window=hour" in html  # the selector offers the other task

    day = viewer_client.get(reverse(URL), {"chart_task": "record", "window": "day"}).content.decode()
    assert drawn(chart(day, "meepo-chart-depth")) == 11  # and the sample of three hours ago
    other = viewer_client.get(reverse(URL), {"chart_task": "other"}).content.decode()
    assert drawn(chart(other, "meepo-chart-throughput")) == 2


def test_without_samples_the_charts_say_no_data_yet(viewer_client: Client) -> None:
    html = viewer_client.get(reverse(URL), {"window": "nonsense", "chart_task": "nonsense"}).content.decode()
    for chart_id in ("meepo-chart-throughput", "meepo-chart-depth", "meepo-chart-latency"):
        svg = chart(html, chart_id)
        assert "no data yet" in svg and "<polyline" not in svg
    assert "last hour" in html  # an unknown window falls back to the last hour


def test_the_samples_cost_one_query(viewer_client: Client) -> None:
    now = minute_of(db_now("default"))
    for task in ("record", "other"):
        for i in range(1, 30):
            sample(task, now - timedelta(minutes=i), done=i)
    with CaptureQueriesContext(connection) as queries:
        assert viewer_client.get(reverse(URL)).status_code == 200
    assert sum("meepo_stat_sample" in q["sql"] for q in queries.captured_queries) == 1


def test_the_admin_index_links_to_the_dashboard(viewer_client: Client) -> None:
    index = viewer_client.get(reverse("admin:index")).content.decode()
    link = reverse("admin:django_meepo_dashboard_changelist")
    assert f'href="{link}"' in index and ">Dashboard<" in index
    response = viewer_client.get(link)
    assert response.status_code == 302 and response["Location"] == reverse(URL)
    assert viewer_client.get(reverse("admin:django_meepo_dashboard_add")).status_code == 403


def test_no_dashboard_entry_without_the_view_permission() -> None:
    user: User = staff("nobody")
    client = Client()
    client.force_login(user)
    assert reverse("admin:django_meepo_dashboard_changelist") not in client.get(reverse("admin:index")).content.decode()
    assert client.get(reverse("admin:django_meepo_dashboard_changelist")).status_code == 403
