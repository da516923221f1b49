"""The job list and detail pages: columns, filters, search, bounded counting, read-only forms, safe deletes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_meepo.admin.paginator import CappedCountPaginator
from django_meepo.models import Attempt, Job

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:django_meepo_job_changelist"


def ids_listed(response) -> set[int]:  # type: ignore[no-untyped-def]
    return {job.pk for job in response.context["cl"].result_list}


def test_list_shows_the_columns(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("doing", worker="host:1:abc", failed_times=2, cid=5)
    response = operator_client.get(reverse(CHANGELIST))
    body = response.content.decode()
    for header in ("Task", "Status", "Fails", "Cid", "Created", "Updated", "Due", "Worker", "Actions"):
        assert f">{header}<" in body or f">{header}</a>" in body, header
    assert "host:1:abc" in body
    assert 'meepo-status-doing">doing<' in body
    assert ids_listed(response) == {job.pk}
    local = timezone.localtime(job.created_at)  # to the second: attempts and updates can be told apart
    assert f'<span class="meepo-moment">{local:%H:%M:%S}</span>' in body


def test_filters(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    todo = make_job("todo")
    failed = make_job("failed", failed_times=3)
    retried = make_job("todo", failed_times=1)
    other = make_job("done", task="other")
    old = make_job("done", created_at=timezone.now() - timezone.timedelta(days=400))
    url = reverse(CHANGELIST)
    assert ids_listed(operator_client.get(url, {"status__exact": "failed"})) == {failed.pk}
    assert ids_listed(operator_client.get(url, {"task": "other"})) == {other.pk}
    assert ids_listed(operator_client.get(url, {"has_failed": "yes"})) == {failed.pk, retried.pk}
    assert ids_listed(operator_client.get(url, {"has_failed": "no"})) == {todo.pk, other.pk, old.pk}
    since = str(timezone.now() - timezone.timedelta(days=7))
    recent = ids_listed(operator_client.get(url, {"created_at__gte": since}))
    assert old.pk not in recent and todo.pk in recent
    task_choices = operator_client.get(url).content.decode()
    assert "?task=record" in task_choices and "?task=manual" in task_choices  # declared, even without jobs


def test_search_by_id_and_idempotency_key(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    first = make_job("todo")
    keyed = Job.objects.push("record", json={}, idempotency_key="order-42")
    url = reverse(CHANGELIST)
    assert ids_listed(operator_client.get(url, {"q": str(first.pk)})) == {first.pk}
    assert ids_listed(operator_client.get(url, {"q": "order-42"})) == {keyed.pk}
    assert ids_listed(operator_client.get(url, {"q": "order-4"})) == set()  # exact only (index-friendly)


def test_the_list_never_counts_the_whole_table(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    for _ in range(6):
        make_job("todo")
    original = CappedCountPaginator.cap
    CappedCountPaginator.cap = 4
    try:
        with CaptureQueriesContext(connection) as queries:
            response = operator_client.get(reverse(CHANGELIST))
    finally:
        CappedCountPaginator.cap = original
    body = response.content.decode()
    assert "more than 4 jobs" in body
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the list counts something"
    assert all("LIMIT 5" in sql for sql in counts), counts


def test_list_uses_the_indexes_and_does_not_load_payloads(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    make_job("failed", payload={"big": "x" * 1000})
    with CaptureQueriesContext(connection) as queries:
        operator_client.get(reverse(CHANGELIST), {"status__exact": "failed"})
    table, payload = connection.ops.quote_name("meepo_job"), connection.ops.quote_name("payload")
    listing = [q["sql"] for q in queries.captured_queries if f"FROM {table}" in q["sql"] and "ORDER BY" in q["sql"]]
    assert listing and all(payload not in sql for sql in listing)
    if connection.vendor != "mysql":
        return  # the plan below is MySQL's EXPLAIN; the index exists on every database (migrations)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN SELECT id FROM meepo_job WHERE status = 'failed' ORDER BY id DESC LIMIT 50")
        columns = [c[0] for c in cursor.description]
        plan = dict(zip(columns, cursor.fetchone(), strict=True))
    assert plan["key"] == "meepo_job_status_id"


def test_change_form_edits_nothing_and_there_is_no_add(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("failed", cid=3)
    change = reverse("admin:django_meepo_job_change", args=(job.pk,))
    body = operator_client.get(change).content.decode()
    form = body.split('id="job_form"')[1].split("</form>")[0]
    assert 'name="_save"' not in form
    assert "<textarea" not in form and "<select" not in form and 'type="text"' not in form
    assert 'name="status"' not in form and 'name="cid"' not in form
    response = operator_client.post(change, {"status": "done", "cid": "99"})
    assert response.status_code == 403
    assert operator_client.get(reverse("admin:django_meepo_job_add")).status_code == 403
    row = Job.objects.get(pk=job.pk)
    assert (row.status, row.cid) == ("failed", 3)


def test_superuser_cannot_edit_either(make_job) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="x"))
    job = make_job("todo", cid=2)
    assert client.post(reverse("admin:django_meepo_job_change", args=(job.pk,)), {"status": "done"}).status_code == 403
    assert Job.objects.get(pk=job.pk).status == "todo"


def test_only_finished_jobs_can_be_deleted(make_job) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="x"))
    running = make_job("doing")
    finished = make_job("done")
    Attempt.objects.create(job=finished, number=1, finished_at=timezone.now(), outcome="failed")
    assert client.get(reverse("admin:django_meepo_job_delete", args=(running.pk,))).status_code == 403
    assert client.post(reverse("admin:django_meepo_job_delete", args=(running.pk,)), {"post": "yes"}).status_code == 403
    assert Job.objects.filter(pk=running.pk).exists()
    client.post(reverse("admin:django_meepo_job_delete", args=(finished.pk,)), {"post": "yes"})
    assert not Job.objects.filter(pk=finished.pk).exists()
    assert not Attempt.objects.filter(job_id=finished.pk).exists()
    actions = client.get(reverse(CHANGELIST)).context["action_form"].fields["action"].choices
    assert "delete_selected" not in {name for name, _ in actions}


def test_detail_shows_payload_error_and_every_attempt(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("failed", payload={"to": "ünïcode@example.com", "n": [1, 2]}, attempts=2, worker="w2",
                   started_at=timezone.now(), finished_at=timezone.now(),
                   last_error="Traceback (most recent call last):\n  File \"x.py\"\nRuntimeError: <boom>")
    Attempt.objects.create(job=job, number=1, worker="w1", started_at=timezone.now(), finished_at=timezone.now(),
                           outcome="failed", error="Traceback …\nValueError: first")
    Attempt.objects.create(job=job, number=2, worker="w2", started_at=timezone.now(), finished_at=timezone.now(),
                           outcome="lease_expired", error="lease expired")
    body = operator_client.get(reverse("admin:django_meepo_job_change", args=(job.pk,))).content.decode()
    assert "&quot;to&quot;: &quot;ünïcode@example.com&quot;,\n  &quot;n&quot;: [" in body  # pretty JSON, UTF-8
    assert "json, 40 bytes" in body
    assert "RuntimeError: &lt;boom&gt;" in body  # escaped
    assert "ValueError: first" in body and ">w1<" in body and ">w2<" in body
    assert "lease_expired" in body


def test_detail_shows_binary_and_large_payloads(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    binary = Job.objects.push("record", b"\x00\xff\x10meepo")
    large = Job.objects.push("record", b"a" * 100_000)
    body = operator_client.get(reverse("admin:django_meepo_job_change", args=(binary.pk,))).content.decode()
    assert "binary, 8 bytes" in body and "00 ff 10 6d 65 65 70 6f" in body
    body = operator_client.get(reverse("admin:django_meepo_job_change", args=(large.pk,))).content.decode()
    assert "text, 97.7 KiB, truncated: first 32.0 KiB shown" in body
    assert "a" * 32768 in body and "a" * 32769 not in body


def test_other_models_keep_their_add_button_and_history(make_job) -> None:  # type: ignore[no-untyped-def]
    """django-admin-actions overrides admin templates site-wide; other models' pages must not lose anything."""
    client = Client()
    root = User.objects.create_superuser("root", password="x")
    client.force_login(root)
    body = client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert reverse("admin:auth_user_add") in body and "Add user" in body
    body = client.get(reverse("admin:auth_user_change", args=(root.pk,))).content.decode()
    assert reverse("admin:auth_user_history", args=(root.pk,)) in body
    assert 'name="_save"' in body


def test_worker_list(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    from django_meepo.models import Worker

    now = timezone.now()
    Worker.objects.create(id="live", hostname="h", pid=1, tasks="record", started_at=now, last_seen=now)
    Worker.objects.create(id="gone", hostname="h", pid=2, tasks="record", started_at=now,
                          last_seen=now - timezone.timedelta(hours=1))
    make_job("doing", worker="live")
    response = operator_client.get(reverse("admin:django_meepo_worker_changelist"))
    rows = {w.id: w for w in response.context["cl"].result_list}
    assert rows["live"].held == 1 and rows["gone"].held == 0
    body = response.content.decode()
    assert body.count('alt="True"') == 1 and body.count('alt="False"') == 1


def test_worker_list_separates_tasks_and_shows_seconds(operator_client) -> None:  # type: ignore[no-untyped-def]
    from django_meepo.models import Worker

    now = timezone.now()
    Worker.objects.create(id="w", hostname="h", pid=1, tasks="record,other,emails", started_at=now, last_seen=now)
    body = operator_client.get(reverse("admin:django_meepo_worker_changelist")).content.decode()
    assert "record, other, emails" in body
    assert f'<span class="meepo-moment">{timezone.localtime(now):%H:%M:%S}</span>' in body


def test_only_a_stale_worker_row_can_be_deleted() -> None:
    from django_meepo.models import Worker

    client = Client()
    client.force_login(User.objects.create_superuser("root", password="x"))
    now = timezone.now()
    Worker.objects.create(id="live", hostname="h", pid=1, tasks="record", started_at=now, last_seen=now)
    Worker.objects.create(id="gone", hostname="h", pid=2, tasks="record", started_at=now,
                          last_seen=now - timezone.timedelta(hours=1))
    assert client.post(reverse("admin:django_meepo_worker_delete", args=("live",)), {"post": "yes"}).status_code == 403
    client.post(reverse("admin:django_meepo_worker_delete", args=("gone",)), {"post": "yes"})
    assert list(Worker.objects.values_list("id", flat=True)) == ["live"]


def test_the_detail_page_shows_times_to_the_second_and_the_exception_line(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    started = timezone.now().replace(microsecond=0)
    job = make_job("failed", started_at=started)
    traceback = ('Traceback (most recent call last):\n  File "/srv/app/jobs.py", line 3, in send\n'
                 '    smtp.send(m)\nConnectionError: SMTP server refused the connection')
    Attempt.objects.create(job=job, number=1, worker="w1", started_at=started,
                           finished_at=started + timezone.timedelta(seconds=1), outcome="failed", error=traceback)
    body = operator_client.get(reverse("admin:django_meepo_job_change", args=(job.pk,))).content.decode()
    second = timezone.localtime(started).strftime("%Y-%m-%d %H:%M:%S")
    assert body.count(second) >= 2, "started_at on the page and in the attempts table"
    assert "<summary>ConnectionError: SMTP server refused the connection</summary>" in body
    assert "<summary>Traceback" not in body
