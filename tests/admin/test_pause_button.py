"""The dashboard's Pause / Resume button per task (admin/pausing.py)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from django_meepo import api
from django_meepo.models import TaskPause

from .conftest import staff

pytestmark = pytest.mark.django_db

DASHBOARD = "admin:django_meepo_job_dashboard"
PAUSE = "admin:django_meepo_job_pause_task"


def login(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def pauser_client() -> Client:
    return login(staff("pauser", "view_job", "pause_task"))


def pause_block(client: Client) -> str:
    body = client.get(reverse(DASHBOARD)).content.decode()
    start = body.index('id="meepo-pauses"')
    return body[start:body.index("</table>", start)]


def test_the_dashboard_lists_every_task_with_a_button_for_users_who_may_pause(pauser_client, viewer_client) -> None:  # type: ignore[no-untyped-def]
    block = pause_block(pauser_client)
    assert "<td>record</td>" in block and "<td>flow_serial</td>" in block
    assert 'value="Pause"' in block and 'name="csrfmiddlewaretoken"' in block
    viewer_block = pause_block(viewer_client)
    assert "<td>record</td>" in viewer_block and "<form" not in viewer_block


def test_pressing_pause_then_resume(pauser_client) -> None:  # type: ignore[no-untyped-def]
    page = pauser_client.post(reverse(PAUSE), {"task": "record", "action": "pause"}, follow=True)
    assert [str(m) for m in page.context["messages"]] == ["paused record"]
    assert TaskPause.objects.get(task="record").paused_by == "pauser (admin)"
    block = pause_block(pauser_client)
    row = re.search(r"<td>record</td>.*?</tr>", block, re.S).group(0)  # type: ignore[union-attr]
    assert "paused since" in row and "by pauser (admin)" in row and 'value="Resume"' in row
    again = pauser_client.post(reverse(PAUSE), {"task": "record", "action": "pause"}, follow=True)
    assert [str(m) for m in again.context["messages"]] == ["record was already paused"]
    page = pauser_client.post(reverse(PAUSE), {"task": "record", "action": "resume"}, follow=True)
    assert [str(m) for m in page.context["messages"]] == ["resumed record"]
    assert not TaskPause.objects.exists()


def test_bad_input_changes_nothing(pauser_client) -> None:  # type: ignore[no-untyped-def]
    page = pauser_client.post(reverse(PAUSE), {"task": "nope", "action": "pause"}, follow=True)
    [message] = [str(m) for m in page.context["messages"]]
    assert "unknown task(s) 'nope'" in message and "nothing was changed" in message
    page = pauser_client.post(reverse(PAUSE), {"task": "record", "action": "explode"}, follow=True)
    assert "nothing was changed" in str(next(iter(page.context["messages"])))
    assert not TaskPause.objects.exists()


def test_a_get_is_refused_and_changes_nothing(pauser_client) -> None:  # type: ignore[no-untyped-def]
    assert pauser_client.get(reverse(PAUSE), {"task": "record", "action": "pause"}).status_code == 405
    assert not TaskPause.objects.exists()


def test_without_the_permission_a_post_is_forbidden(operator_client) -> None:  # type: ignore[no-untyped-def]
    # the operator may repush and commit jobs, but not pause tasks
    assert operator_client.post(reverse(PAUSE), {"task": "record", "action": "pause"}).status_code == 403
    assert not TaskPause.objects.exists()
    api.pause("record")
    assert operator_client.post(reverse(PAUSE), {"task": "record", "action": "resume"}).status_code == 403
    assert TaskPause.objects.filter(task="record").exists()


def test_a_post_without_the_csrf_token_is_refused() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff("pauser", "view_job", "pause_task"))
    assert client.post(reverse(PAUSE), {"task": "record", "action": "pause"}).status_code == 403
    assert not TaskPause.objects.exists()
    block = pause_block(client)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', block).group(1)  # type: ignore[union-attr]
    assert client.post(reverse(PAUSE), {"task": "record", "action": "pause",
                                        "csrfmiddlewaretoken": token}).status_code == 302
    assert TaskPause.objects.filter(task="record").exists()
