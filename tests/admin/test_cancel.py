"""The admin's Cancel: a per-job button and a bulk action, each behind a confirmation page (GET changes nothing,
POST with CSRF acts at the cid shown), both needing ``django_meepo.cancel_job``; the status shown and filterable."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_meepo.models import Attempt, Job
from tests.admin.conftest import staff
from tests.admin.test_bulk_and_dashboard import CHANGELIST, act, statuses

pytestmark = pytest.mark.django_db

VIEW = "meepo_job_cancel"


def url(job: Job) -> str:
    return reverse(f"admin:{VIEW}", args=(job.pk,))


def state(job: Job) -> tuple[str, int, str]:
    row = Job.objects.get(pk=job.pk)
    return row.status, row.cid, row.last_error


def messages_of(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture
def canceller() -> Client:
    client = Client()
    client.force_login(staff("canceller", "view_job", "cancel_job"))
    return client


@pytest.fixture
def csrf_canceller() -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff("csrf-canceller", "view_job", "cancel_job"))
    return client


def test_get_shows_a_confirmation_asking_why_and_changes_nothing(canceller, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("doing", cid=7)
    response = canceller.get(url(job))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="csrfmiddlewaretoken"' in body and re.search(r'name="cid" value="7"', body)
    assert "its function sees job.cancelled at its next heartbeat" in body
    assert 'name="note"' in body, "the reason is asked for"
    assert "meepo-status-cancelled" in body and f"Yes, cancel job {job.pk}" in body
    assert state(job)[:2] == ("doing", 7)


def test_post_cancels_at_the_cid_shown_and_records_who_and_why(canceller, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("doing", cid=7, attempts=1, worker="host:1:w", started_at=timezone.now())
    response = canceller.post(url(job), {"cid": "7", "note": "duplicate order"}, follow=True)
    assert state(job) == ("cancelled", 8, "cancelled by canceller in the admin: duplicate order")
    assert any(f"Job {job.pk}: cancel done; it is now cancelled at cid 8." in m for m in messages_of(response))
    assert LogEntry.objects.filter(object_id=str(job.pk), change_message__contains="Cancel by canceller: cid 7 → 8")\
        .exists()
    assert list(Attempt.objects.filter(job_id=job.pk).values_list("outcome", flat=True)) == ["cancelled"]


def test_a_job_that_changed_since_the_page_was_shown_is_refused(canceller, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("todo", cid=4)
    response = canceller.post(url(job), {"cid": "3"}, follow=True)
    assert any("Cancel refused: cannot cancel job" in m and "not at cid 3" in m for m in messages_of(response))
    assert state(job)[:2] == ("todo", 4)


@pytest.mark.parametrize("status", ["done", "failed", "cancelled"])
def test_a_finished_job_offers_no_cancel_and_a_post_is_refused_clearly(status, canceller, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job(status, cid=5)
    detail = canceller.get(reverse("admin:django_meepo_job_change", args=(job.pk,))).content.decode()
    assert url(job) not in detail
    page = canceller.get(url(job), follow=True)
    assert any(f"Job {job.pk} is {status}: Cancel is offered only from todo, doing, zombie" in m
               for m in messages_of(page))
    response = canceller.post(url(job), {"cid": "5"}, follow=True)
    assert any(f"Cancel refused: job {job.pk} is '{status}'" in m for m in messages_of(response))
    assert state(job)[:2] == (status, 5)


@pytest.mark.parametrize("status", ["todo", "doing", "zombie"])
def test_the_button_is_offered_on_the_list_and_the_detail_of_a_job_not_finished(status, canceller, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job(status)
    for page in (reverse(CHANGELIST), reverse("admin:django_meepo_job_change", args=(job.pk,))):
        assert url(job) in canceller.get(page).content.decode()


def test_without_the_permission_no_button_no_action_and_a_forged_post_gets_403(operator_client, make_job) -> None:  # type: ignore[no-untyped-def]
    """The operator may repush and commit, but not cancel."""
    job = make_job("todo", cid=2)
    listing = operator_client.get(reverse(CHANGELIST)).content.decode()
    detail = operator_client.get(reverse("admin:django_meepo_job_change", args=(job.pk,))).content.decode()
    assert url(job) not in listing and url(job) not in detail
    assert "cancel_selected" not in listing
    assert operator_client.get(url(job)).status_code == 403
    assert operator_client.post(url(job), {"cid": "2"}).status_code == 403
    act(operator_client, "cancel_selected", [job], confirm=True)
    assert state(job)[:2] == ("todo", 2)


def test_post_without_csrf_token_is_refused(csrf_canceller, make_job) -> None:  # type: ignore[no-untyped-def]
    job = make_job("todo", cid=2)
    assert csrf_canceller.post(url(job), {"cid": "2"}).status_code == 403
    assert state(job)[:2] == ("todo", 2)
    page = csrf_canceller.get(url(job))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    csrf_canceller.post(url(job), {"cid": "2", "csrfmiddlewaretoken": token})
    assert state(job)[:2] == ("cancelled", 3)


def test_bulk_cancel_confirms_how_many_will_change_then_acts(canceller, make_job) -> None:  # type: ignore[no-untyped-def]
    jobs = [make_job("todo"), make_job("doing"), make_job("zombie"), make_job("done"), make_job("cancelled")]
    assert "cancel_selected" in canceller.get(reverse(CHANGELIST)).content.decode()
    page = act(canceller, "cancel_selected", jobs)
    assert page.status_code == 200 and page.context["eligible"] == 3
    body = page.content.decode()
    assert "3 jobs will change" in body and "2 of the 5 selected are not in todo, doing, zombie" in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert statuses(*jobs) == ["todo", "doing", "zombie", "done", "cancelled"], "the confirmation changed nothing"
    done = act(canceller, "cancel_selected", jobs, confirm=True)
    assert statuses(*jobs) == ["cancelled", "cancelled", "cancelled", "done", "cancelled"]
    assert any("Cancel: 3 job(s) changed by canceller." in str(m) for m in done.context["messages"])
    assert Job.objects.get(pk=jobs[0].pk).last_error == "cancelled by canceller in the admin"


def test_the_status_filter_offers_cancelled(canceller, make_job) -> None:  # type: ignore[no-untyped-def]
    cancelled, todo = make_job("cancelled"), make_job("todo")
    listing = canceller.get(reverse(CHANGELIST) + "?status__exact=cancelled")
    body = listing.content.decode()
    assert "?status__exact=cancelled" in canceller.get(reverse(CHANGELIST)).content.decode()
    shown = {j.pk for j in listing.context["cl"].result_list}
    assert cancelled.pk in shown and todo.pk not in shown
    assert '<span class="meepo-status meepo-status-cancelled">cancelled</span>' in body
