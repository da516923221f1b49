"""End to end in a real headless Chromium: log in, press Repush on a failed job, confirm, see it become todo."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from django_meepo.models import Job

from .browser import chromium, log_in
from .conftest import PASSWORD, grant

pytestmark = pytest.mark.slow


@pytest.mark.django_db(transaction=True)
def test_repush_a_failed_job_in_the_browser(live_server) -> None:  # type: ignore[no-untyped-def]
    user = User.objects.create_user("ops", password=PASSWORD, is_staff=True)
    grant(user, "view_job", "repush_job", "commit_job")
    job = Job.objects.push("record", json={"to": "a@example.com"})
    Job.objects.filter(id=job.id).update(status="failed", failed_times=3, cid=4,
                                         last_error="RuntimeError: planned failure")
    with chromium() as driver:
        wait = WebDriverWait(driver, 60)
        log_in(driver, live_server.url, "ops", PASSWORD, "/admin/django_meepo/job/?status__exact=failed")
        row = wait.until(expected_conditions.presence_of_element_located(
            (By.XPATH, f"//tr[.//th[contains(@class, 'field-id')]/a[text()='{job.id}']]")))
        assert row.find_element(By.CSS_SELECTOR, ".meepo-status").text == "failed"
        row.find_element(By.LINK_TEXT, "Repush").click()

        confirm = wait.until(expected_conditions.element_to_be_clickable(
            (By.CSS_SELECTOR, "form input[type=submit].default")))
        assert f"Repush: job {job.id}?" in driver.title
        assert Job.objects.get(id=job.id).status == "failed", "the confirmation page changed nothing"
        confirm.click()

        message = wait.until(expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, ".messagelist .success")))
        assert f"Job {job.id}: repush done; it is now todo at cid 5." in message.text
        assert "status__exact=failed" in driver.current_url  # back to the list the operator came from
    row = Job.objects.get(id=job.id)
    assert (row.status, row.cid, row.failed_times) == ("todo", 5, 0)
