"""The dashboard's charts in a real headless Chromium: the SVGs are there, laid out, and carry the data points."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from django_meepo.clock import db_now
from django_meepo.models import StatSample
from django_meepo.samples import minute_of

from .browser import chromium, log_in
from .conftest import PASSWORD, grant

pytestmark = pytest.mark.slow


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_draws_the_charts_in_the_browser(live_server) -> None:  # type: ignore[no-untyped-def]
    user = User.objects.create_user("ops", password=PASSWORD, is_staff=True)
    grant(user, "view_job")
    now = minute_of(db_now("default"))
    for i in range(1, 31):
        StatSample.objects.create(task="record", minute=now - timedelta(minutes=i), done=10 + i % 7, failed=i % 3,
                                  depth=i, oldest_due_seconds=float(i), latency_p50=0.2, latency_p95=1.5,
                                  created_at=now)
    with chromium() as driver:
        wait = WebDriverWait(driver, 60)
        log_in(driver, live_server.url, "ops", PASSWORD, "/admin/")
        link = wait.until(expected_conditions.element_to_be_clickable((By.LINK_TEXT, "Dashboard")))
        link.click()  # the app-list entry leads to the dashboard
        svg = wait.until(expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, "svg#meepo-chart-throughput")))
        assert "/admin/django_meepo/job/dashboard/" in driver.current_url
        assert svg.size["width"] > 200 and svg.size["height"] > 60  # laid out, not collapsed
        for chart_id, expected in (("throughput", 60), ("depth", 30), ("latency", 60)):
            points = driver.execute_script(
                "return Array.from(document.querySelectorAll(arguments[0] + ' polyline'))"
                ".reduce((n, p) => n + p.points.numberOfItems, 0)", f"svg#meepo-chart-{chart_id}")
            assert points == expected, chart_id
        title = driver.execute_script("return document.querySelector('svg#meepo-chart-depth title').textContent")
        assert title == "Queue depth (due todo jobs): record, last hour (UTC)"
        driver.find_element(By.LINK_TEXT, "last day").click()
        wait.until(expected_conditions.url_contains("window=day"))
        assert "no data yet" not in driver.find_element(By.ID, "meepo-chart-depth").text
