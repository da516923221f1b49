"""The job list and detail pages show a job's progress as a bar (job.progress), and a snoozed attempt."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from django_meepo.admin.display import progress_html
from django_meepo.models import Attempt

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:django_meepo_job_changelist"


def test_the_list_shows_a_bar_for_a_job_that_reported_progress_and_a_dash_otherwise(  # type: ignore[no-untyped-def]
        operator_client, make_job) -> None:
    make_job("doing", progress_done=370, progress_total=1000, progress_note="resizing <img>")
    make_job("todo")
    body = operator_client.get(reverse(CHANGELIST)).content.decode()
    assert ">Progress<" in body or ">Progress</a>" in body
    assert 'style="width: 37.0%"' in body and "37% · 370/1,000" in body
    assert 'title="resizing &lt;img&gt;"' in body, "the note is the tooltip, escaped"
    assert body.count('class="meepo-progress"') == 1
    assert '<td class="field-progress"><span class="meepo-quiet">-</span></td>' in body


def test_the_detail_page_shows_the_bar_the_note_and_when_it_was_reported(  # type: ignore[no-untyped-def]
        operator_client, make_job) -> None:
    job = make_job("done", progress_done=10, progress_total=10, progress_note="all 10 images",
                   progress_at=timezone.now())
    Attempt.objects.create(job_id=job.id, number=1, finished_at=timezone.now(), outcome="snoozed",
                           error="snoozed for 30 s by the job function")
    body = operator_client.get(reverse("admin:django_meepo_job_change", args=(job.id,))).content.decode()
    assert 'class="meepo-progress meepo-progress-wide"' in body and 'style="width: 100.0%"' in body
    assert '<span class="meepo-progress-note">all 10 images</span>' in body and "(reported " in body
    assert 'meepo-outcome-snoozed">snoozed<' in body


@pytest.mark.parametrize(("done", "total", "width", "label"), [
    (0, 0, "0.0", "0% · 0/0"), (1, 3, "33.3", "33% · 1/3"), (5, 5, "100.0", "100% · 5/5")])
def test_the_bar_width_and_label(done, total, width, label) -> None:  # type: ignore[no-untyped-def]
    html = progress_html(done, total, "")
    assert f'style="width: {width}%"' in html and label in html
