"""Every list filter is answered from an index; the admin reads MEEPO['DATABASE']; a repush keeps the history."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_meepo import api
from django_meepo import statemachine as sm
from django_meepo.conf import get_settings
from django_meepo.models import Job, Worker

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:django_meepo_job_changelist"
TODAY = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)  # as DateFieldListFilter's "Today"
FILTERS = {
    "status": {"status__exact": "failed"},
    "task": {"task": "record"},
    "has failed": {"has_failed": "yes"},
    "created": {"created_at__gte": str(TODAY), "created_at__lt": str(TODAY + timedelta(days=1))},
    "finished": {"finished_at__gte": str(TODAY), "finished_at__lt": str(TODAY + timedelta(days=1))},
}


def full_scans(sql: str) -> list[dict[str, object]]:
    """The steps of MySQL's plan that read the whole job table."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        columns = [c[0] for c in cursor.description]
        steps = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return [s for s in steps if s["table"] == "meepo_job" and s["type"] == "ALL"]


@pytest.mark.parametrize("name", list(FILTERS))
def test_each_filter_is_answered_from_an_index(name, operator_client) -> None:  # type: ignore[no-untyped-def]
    if connection.vendor != "mysql":
        pytest.skip("the plans below are MySQL's EXPLAIN; the indexes exist on every database (migrations)")
    jobs = Job.objects.push_many("record", json=[{"n": n} for n in range(400)])
    Job.objects.filter(id__in=[j.id for j in jobs[:20]]).update(status="failed", failed_times=3,
                                                                 finished_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        response = operator_client.get(reverse(CHANGELIST), FILTERS[name])
    assert response.status_code == 200 and response.context["cl"].result_list, name
    table = connection.ops.quote_name("meepo_job")
    listed = [q["sql"] for q in queries.captured_queries
              if f"FROM {table}" in q["sql"] and q["sql"].lstrip().upper().startswith("SELECT")
              and "DISTINCT" not in q["sql"].upper()]  # the task filter's own choices come from its index too
    assert listed, "the list and its count were captured"
    for sql in listed:
        assert full_scans(sql) == [], f"{name}: {sql}"


def test_the_admin_reads_the_configured_database(monkeypatch, operator) -> None:  # type: ignore[no-untyped-def]
    elsewhere = dataclasses.replace(get_settings(), database="jobs_db")
    monkeypatch.setattr("django_meepo.admin.jobs.get_settings", lambda: elsewhere)
    monkeypatch.setattr("django_meepo.admin.workers.get_settings", lambda: elsewhere)
    request = RequestFactory().get("/")
    request.user = operator
    assert admin.site._registry[Job].get_queryset(request).db == "jobs_db"
    assert admin.site._registry[Worker].get_queryset(request).db == "jobs_db"


def test_the_detail_page_shows_a_run_a_repush_replaced(operator_client, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    job = Job.objects.push("record", b"{}")
    [claimed] = sm.claim("record", [sm.Ref(job.id, 1)], worker="host-a:1:first", lease_seconds=30, using="default")
    sm.finish_done("record", [claimed.ref], using="default")
    api.repush(job.id)
    cid = Job.objects.get(id=job.id).cid
    sm.claim("record", [sm.Ref(job.id, cid)], worker="host-b:2:second", lease_seconds=30, using="default")
    body = operator_client.get(reverse("admin:django_meepo_job_change", args=(job.id,))).content.decode()
    attempts = body.split('class="meepo-attempts"')[1].split("</table>")[0]
    assert "host-a:1:first" in attempts and "meepo-outcome-done" in attempts, "run 1, though the row was repushed"
    assert "host-b:2:second" in attempts and "meepo-outcome-running" in attempts
