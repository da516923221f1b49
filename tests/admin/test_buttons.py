"""The per-job buttons: GET confirms and changes nothing, POST acts at the cid shown, permissions, conflicts."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from django_meepo.models import Job

pytestmark = pytest.mark.django_db

# (view name, status it may be pressed from, status it leads to)
CASES = [
    ("meepo_job_repush", "failed", "todo"),
    ("meepo_job_commit_done", "doing", "done"),
    ("meepo_job_commit_failed", "zombie", "failed"),
    ("meepo_job_commit_todo", "done", "todo"),
]


def url(view: str, job: Job) -> str:
    return reverse(f"admin:{view}", args=(job.pk,))


def state(job: Job) -> tuple[str, int, int]:
    row = Job.objects.get(pk=job.pk)
    return row.status, row.cid, row.failed_times


def messages_of(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.mark.parametrize(("view", "source", "target"), CASES)
def test_get_shows_a_confirmation_and_changes_nothing(view, source, target, operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job(source, cid=7, failed_times=2)
    response = operator_client.get(url(view, job))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="csrfmiddlewaretoken"' in body
    assert re.search(r'name="cid" value="7"', body)
    assert f"job {job.pk}" in body
    assert state(job) == (source, 7, 2)


@pytest.mark.parametrize(("view", "source", "target"), CASES)
def test_post_changes_the_job_through_the_state_machine(view, source, target, operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job(source, cid=7, failed_times=2)
    response = operator_client.post(url(view, job), {"cid": "7"}, follow=True)
    status, cid, _ = state(job)
    assert (status, cid) == (target, 8)
    assert any(f"it is now {target} at cid 8" in m for m in messages_of(response))
    assert LogEntry.objects.filter(object_id=str(job.pk), change_message__contains="cid 7 → 8").exists()


def test_commit_failed_records_who_and_why(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("doing", cid=3)
    operator_client.post(url("meepo_job_commit_failed", job), {"cid": "3", "note": "customer cancelled"})
    row = Job.objects.get(pk=job.pk)
    assert row.status == "failed"
    assert row.last_error == "committed 'failed' by operator in the admin: customer cancelled"


@pytest.mark.parametrize(("view", "source", "target"), CASES)
def test_stale_cid_shows_the_conflict_and_changes_nothing(view, source, target, operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job(source, cid=5)
    page = operator_client.get(url(view, job))
    assert 'name="cid" value="5"' in page.content.decode()
    Job.objects.filter(pk=job.pk).update(cid=6)  # someone else acted meanwhile
    response = operator_client.post(url(view, job), {"cid": "5"}, follow=True)
    assert response.status_code == 200
    assert state(job)[:2] == (source, 6)
    [message] = messages_of(response)
    assert "refused" in message and "not at cid 5" in message


def test_commit_done_on_a_finished_job_is_refused_with_a_message(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("done", cid=4)
    response = operator_client.get(url("meepo_job_commit_done", job), follow=True)
    assert response.status_code == 200
    assert any("offered only from todo, doing, zombie" in m for m in messages_of(response))
    response = operator_client.post(url("meepo_job_commit_done", job), {"cid": "4"}, follow=True)
    assert response.status_code == 200
    assert any("Commit done refused" in m for m in messages_of(response))
    assert state(job)[:2] == ("done", 4)


def test_missing_job_and_bad_form_are_not_server_errors(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    response = operator_client.get(reverse("admin:meepo_job_repush", args=(999_999_999,)), follow=True)
    assert response.status_code == 200
    assert any("No job with id 999999999" in m for m in messages_of(response))
    job = make_job("failed", cid=2)
    assert operator_client.post(url("meepo_job_repush", job), {"cid": "abc"}).status_code == 400
    assert operator_client.post(url("meepo_job_repush", job), {}).status_code == 400
    assert state(job)[:2] == ("failed", 2)


@pytest.mark.parametrize(("view", "source", "target"), CASES)
def test_without_the_permission_there_is_no_button_and_a_forged_post_gets_403(view, source, target, viewer_client,  # type: ignore[no-untyped-def]
                                                                              make_job) -> None:
    job = make_job(source, cid=7)
    listing = viewer_client.get(reverse("admin:django_meepo_job_changelist"))
    detail = viewer_client.get(reverse("admin:django_meepo_job_change", args=(job.pk,)))
    assert listing.status_code == detail.status_code == 200
    assert str(job.pk) in listing.content.decode()
    for page in (listing, detail):
        assert url(view, job) not in page.content.decode()
    assert viewer_client.get(url(view, job)).status_code == 403
    assert viewer_client.post(url(view, job), {"cid": "7"}).status_code == 403
    assert state(job)[:2] == (source, 7)


def test_repush_permission_alone_offers_only_repush(make_job) -> None:  # type: ignore[no-untyped-def]
    from .conftest import staff

    client = Client()
    client.force_login(staff("repusher", "view_job", "repush_job"))
    job = make_job("doing", cid=3)
    body = client.get(reverse("admin:django_meepo_job_change", args=(job.pk,))).content.decode()
    assert url("meepo_job_repush", job) in body
    assert url("meepo_job_commit_done", job) not in body
    assert client.post(url("meepo_job_commit_done", job), {"cid": "3"}).status_code == 403
    client.post(url("meepo_job_repush", job), {"cid": "3"})
    assert state(job)[:2] == ("todo", 4)


def test_post_without_csrf_token_is_refused(csrf_client, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("failed", cid=2)
    assert csrf_client.post(url("meepo_job_repush", job), {"cid": "2"}).status_code == 403
    assert state(job)[:2] == ("failed", 2)
    page = csrf_client.get(url("meepo_job_repush", job))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    csrf_client.post(url("meepo_job_repush", job), {"cid": "2", "csrfmiddlewaretoken": token})
    assert state(job)[:2] == ("todo", 3)


def test_buttons_follow_the_operator_rules(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    """Done/failed only from todo, doing, zombie; repush and commit todo from every status."""
    offered = {}
    for status in ("todo", "doing", "done", "failed", "zombie"):
        job = make_job(status)
        body = operator_client.get(reverse("admin:django_meepo_job_change", args=(job.pk,))).content.decode()
        offered[status] = {v for v, _, _ in CASES if url(v, job) in body}
    everywhere = {"meepo_job_repush", "meepo_job_commit_todo"}
    committing = everywhere | {"meepo_job_commit_done", "meepo_job_commit_failed"}
    assert offered == {"todo": committing, "doing": committing, "zombie": committing,
                       "done": everywhere, "failed": everywhere}


def test_row_buttons_return_to_the_filtered_list(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("failed", cid=2)
    listing_url = reverse("admin:django_meepo_job_changelist") + "?status__exact=failed"
    body = operator_client.get(listing_url).content.decode()
    link = re.search(rf'href="({re.escape(url("meepo_job_repush", job))}\?next=[^"]+)"', body)
    assert link, "the row has a Repush button"
    page = operator_client.get(link.group(1).replace("&amp;", "&"))
    response = operator_client.post(link.group(1).replace("&amp;", "&"),
                                    {"cid": "2", "next": page.context["form"].initial["next"]})
    assert response.status_code == 302
    assert response["Location"] == listing_url
    assert state(job)[:2] == ("todo", 3)


def test_next_pointing_elsewhere_is_ignored(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("failed", cid=2)
    response = operator_client.post(url("meepo_job_repush", job), {"cid": "2", "next": "https://evil.example/"})
    assert response["Location"] == reverse("admin:django_meepo_job_change", args=(job.pk,))


def test_a_forbidden_press_shows_an_admin_page_with_the_reason(viewer_client, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("failed", cid=2)
    response = viewer_client.get(url("meepo_job_repush", job))
    assert response.status_code == 403
    names = {t.name for t in response.templates}
    assert {"admin/django_meepo/forbidden.html", "admin/base_site.html"} <= names
    body = response.content.decode()
    assert "repush_job permission" in body and "Nothing was changed" in body
    assert state(job)[:2] == ("failed", 2)
