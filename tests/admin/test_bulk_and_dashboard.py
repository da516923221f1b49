"""Bulk actions (confirmation page, then the change) and the dashboard page."""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from django_meepo.dispatch.redis import DEFAULT, queue_keys
from django_meepo.models import Job, Worker

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:django_meepo_job_changelist"


def statuses(*jobs: Job) -> list[str]:
    return [Job.objects.get(pk=j.pk).status for j in jobs]


def act(client, action: str, jobs, *, confirm: bool = False, url: str | None = None, **extra):  # type: ignore[no-untyped-def]
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [str(j.pk) for j in jobs], **extra}
    if confirm:
        data["post"] = "yes"
    else:
        data["index"] = "0"
    return client.post(url or reverse(CHANGELIST), data, follow=confirm)


def test_bulk_commit_done_confirms_how_many_will_change_then_acts(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    jobs = [make_job("todo"), make_job("doing"), make_job("zombie"), make_job("done"), make_job("failed")]
    page = act(operator_client, "commit_done_selected", jobs)
    assert page.status_code == 200
    assert page.context["eligible"] == 3 and page.context["total"] == 5
    body = page.content.decode()
    assert "3 jobs will change" in body and "2 of the 5 selected are not in todo, doing, zombie" in body
    assert statuses(*jobs) == ["todo", "doing", "zombie", "done", "failed"]  # the confirmation changed nothing
    done = act(operator_client, "commit_done_selected", jobs, confirm=True)
    assert statuses(*jobs) == ["done", "done", "done", "done", "failed"]
    assert any("3 job(s) changed by operator" in str(m) for m in done.context["messages"])


def test_bulk_commit_failed(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    jobs = [make_job("todo"), make_job("done")]
    act(operator_client, "commit_failed_selected", jobs, confirm=True)
    assert statuses(*jobs) == ["failed", "done"]


def test_bulk_repush_every_status(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    jobs = [make_job(s, cid=4, failed_times=3) for s in ("todo", "doing", "done", "failed", "zombie")]
    page = act(operator_client, "repush_selected", jobs)
    assert "5 jobs will change" in page.content.decode()
    act(operator_client, "repush_selected", jobs, confirm=True)
    rows = [Job.objects.get(pk=j.pk) for j in jobs]
    assert {(r.status, r.cid, r.failed_times) for r in rows} == {("todo", 5, 0)}


def test_bulk_across_every_page_of_a_filter(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    failed = [make_job("failed") for _ in range(3)]
    spared = make_job("done")
    url = reverse(CHANGELIST) + "?status__exact=failed"
    page = act(operator_client, "repush_selected", failed[:1], url=url, select_across="1")
    assert page.context["eligible"] == 3
    assert 'name="select_across" value="1"' in page.content.decode()
    act(operator_client, "repush_selected", failed[:1], url=url, select_across="1", confirm=True)
    assert statuses(*failed, spared) == ["todo", "todo", "todo", "done"]


def test_bulk_actions_need_the_permissions(viewer_client, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("failed")
    page = viewer_client.get(reverse(CHANGELIST))
    body = page.content.decode()
    assert "repush_selected" not in body and "commit_done_selected" not in body
    for action in ("repush_selected", "commit_done_selected"):
        for confirm in (True, False):
            # A forged POST of an action the user lacks is not an action for them at all: Django's changelist
            # offers them no actions, so it shows the list again; nothing runs and no confirmation is shown.
            response = act(viewer_client, action, [job], confirm=confirm)
            assert response.status_code == 200
            assert response.context["cl"].model is Job, "the job list, not a confirmation page"
            assert "eligible" not in response.context
            assert not any("changed" in str(m) for m in response.context["messages"])
    assert statuses(job) == ["failed"]


def test_dashboard_shows_the_numbers(operator_client, make_job, redis, key_prefix) -> None:  # type: ignore[no-untyped-def]
    make_job("todo", due_at=timezone.now() - timezone.timedelta(minutes=5))
    make_job("failed", finished_at=timezone.now())
    make_job("done", task="other", finished_at=timezone.now() - timezone.timedelta(minutes=30))
    now = timezone.now()
    Worker.objects.create(id="w-live", hostname="h", pid=1, tasks="record", started_at=now, last_seen=now)
    held = make_job("doing", worker="w-live")
    redis.rpush(queue_keys(key_prefix, "record")[DEFAULT], "1:1", "2:1")
    response = operator_client.get(reverse("admin:django_meepo_job_dashboard"))
    assert response.status_code == 200
    snapshot = response.context["snapshot"]
    record = next(t for t in snapshot.tasks if t.name == "record")
    assert record.counts["todo"] == 1 and record.counts["failed"] == 1 and record.counts["doing"] == 1
    assert record.queued_in_redis == 2
    assert 290 <= record.oldest_due_seconds < 3600
    body = response.content.decode()
    assert "w-live" in body and f"record#{held.pk}" in body and "alive" in body
    assert "Redis queue lengths are unavailable" not in body


@override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
                           "meepo": {"BACKEND": "django_redis.cache.RedisCache",
                                     "LOCATION": "redis://127.0.0.1:1/0",
                                     "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1}}})
def test_dashboard_without_redis_still_shows_the_database_numbers(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    make_job("todo")
    response = operator_client.get(reverse("admin:django_meepo_job_dashboard"))
    assert response.status_code == 200
    assert "Redis queue lengths are unavailable" in response.content.decode()
    record = next(t for t in response.context["snapshot"].tasks if t.name == "record")
    assert record.counts["todo"] == 1 and record.queued_in_redis is None


def test_dashboard_needs_the_view_permission(make_job) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    from .conftest import staff

    client = Client()
    client.force_login(staff("nobody"))
    assert client.get(reverse("admin:django_meepo_job_dashboard")).status_code == 403
