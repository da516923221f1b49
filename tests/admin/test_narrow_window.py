"""At 1,280 and 1,400 px, with the navigation sidebar open (a new user's default), the job list's last columns
(DUE, WORKER, ACTIONS), an own job table's list and the workers list fit in the window: no horizontal scroll
hides the row buttons."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from testproject.models import OwnJob

from .browser import chromium, log_in
from .conftest import PASSWORD
from .test_screenshots import demo_data

pytestmark = pytest.mark.slow

OVERFLOW = """
const results = document.querySelector('#changelist .results');
const table = document.querySelector('#result_list');
if (!results || !table) return {missing: location.href, title: document.title};
const last = [...table.querySelectorAll('thead th')].pop();
return {scroll: results.scrollWidth, client: results.clientWidth, window: window.innerWidth,
        last_right: Math.round(last.getBoundingClientRect().right), last: last.innerText.trim()};
"""


@pytest.mark.django_db(transaction=True)
def test_the_last_columns_fit_at_1280_and_1400_px(live_server) -> None:  # type: ignore[no-untyped-def]
    User.objects.create_superuser("admin", password=PASSWORD)
    demo_data()
    OwnJob.objects.push_many("record_own", json=[{"order": i} for i in range(5)])  # a job table of its own
    seen = {}
    with chromium(1400, 1000) as driver:
        log_in(driver, live_server.url, "admin", PASSWORD, "/admin/")
        for width in (1280, 1400):
            driver.set_window_size(width, 1000)
            for page in ("/admin/django_meepo/job/", "/admin/django_meepo/worker/", "/admin/testproject/ownjob/"):
                driver.get(live_server.url + page)
                seen[width, page] = driver.execute_script(OVERFLOW)
    for (width, page), got in seen.items():
        assert "missing" not in got, (width, page, got)  # not a change list with rows: the login form, an error
        assert got["scroll"] <= got["client"], (width, page, got)
        assert got["last_right"] <= got["window"], (width, page, got)
    assert seen[1280, "/admin/django_meepo/job/"]["last"].lower() == "actions"
