"""The admin of a task's own job table (tables.py): one list per job table. testproject.OwnJob gets the job list,
detail page, buttons and bulk actions; each acts on its own table's row, never on meepo_job's with the same id."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from django_meepo.admin import JobAdmin
from django_meepo.models import Job
from testproject.models import OwnAttempt, OwnJob
from tests.admin.conftest import staff
from tests.integration.test_tables import colliding

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_operator() -> Client:
    user = staff("own-operator", "view_job", "repush_job", "commit_job", "cancel_job")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="testproject", codename="view_ownjob"))
    client = Client()
    client.force_login(User.objects.get(pk=user.pk))
    return client


def test_every_job_model_has_a_job_admin() -> None:
    assert isinstance(admin.site._registry[OwnJob], JobAdmin)
    assert isinstance(admin.site._registry[Job], JobAdmin)


def test_the_list_and_the_detail_of_an_own_table(own_operator: Client, key_prefix: str) -> None:
    shared, own = colliding()
    OwnAttempt.objects.create(job_id=own.id, number=1, finished_at=own.created_at, outcome="failed",
                              error="an own attempt")
    page = own_operator.get(reverse("admin:testproject_ownjob_changelist"))
    assert page.status_code == 200
    assert f"/admin/testproject/ownjob/{own.id}/change/" in page.content.decode()
    assert reverse("admin:testproject_ownjob_meepo_job_repush", args=(own.id,)) in page.content.decode()
    detail = own_operator.get(reverse("admin:testproject_ownjob_change", args=(own.id,))).content.decode()
    assert "record_own" in detail and "an own attempt" in detail
    assert reverse("admin:meepo_job_repush", args=(shared.id,)) == f"/admin/django_meepo/job/repush/{shared.id}/"


def test_a_button_on_an_own_table_changes_that_row_only(own_operator: Client, key_prefix: str) -> None:
    shared, own = colliding()
    url = reverse("admin:testproject_ownjob_meepo_job_commit_done", args=(own.id,))
    assert "Commit done: job" in own_operator.get(url).content.decode()
    response = own_operator.post(url, {"cid": "1"}, follow=True)
    assert "it is now done at cid 2" in response.content.decode()
    assert OwnJob.objects.get(id=own.id).status == "done"
    assert (Job.objects.get(id=shared.id).status, Job.objects.get(id=shared.id).cid) == ("todo", 1)


def test_a_bulk_action_on_an_own_table(own_operator: Client, key_prefix: str) -> None:
    shared, own = colliding()
    url = reverse("admin:testproject_ownjob_changelist")
    data = {"action": "cancel_selected", "_selected_action": [str(own.id)]}
    assert "Cancel 1 job?" in own_operator.post(url, data).content.decode()
    own_operator.post(url, {**data, "post": "yes"}, follow=True)
    assert OwnJob.objects.get(id=own.id).status == "cancelled"
    assert Job.objects.get(id=shared.id).status == "todo"


def test_the_dashboard_links_a_task_to_its_tables_list(own_operator: Client, key_prefix: str) -> None:
    OwnJob.objects.push("record_own", json={})
    page = own_operator.get(reverse("admin:django_meepo_job_dashboard")).content.decode()
    assert f'{reverse("admin:testproject_ownjob_changelist")}?task=record_own' in page
    assert f'{reverse("admin:django_meepo_job_changelist")}?task=record' in page
