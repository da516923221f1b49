"""Headless Chromium for the admin's browser tests: Debian's chromium and chromium-driver, never a download."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.services import IN_CI

CHROMIUM = Path(os.environ.get("MEEPO_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("MEEPO_CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


def require_chromium() -> None:
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    message = f"{CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
    if IN_CI:
        pytest.fail(f"{message} and CI=true: scripts/test.sh installs them")
    pytest.skip(message)


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[object]:
    """A Selenium driver for the system's Chromium, with a fresh profile that is removed afterwards."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="meepo-chromium-") as profile:
        options = Options()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
        driver.set_page_load_timeout(120)
        try:
            yield driver
        finally:
            driver.quit()


def log_in(driver, base_url: str, username: str, password: str, next_path: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    driver.get(f"{base_url}/admin/login/?next={next_path}")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    _wait_until_logged_in(driver)


def _wait_until_logged_in(driver, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for the login POST to land. `click()` returns before the browser has the session cookie: a
    `driver.get` straight after it (seen on a loaded CI machine) cancels the POST, and the next page is the
    login form again. A wrong password raises here, naming the page, instead of a later step failing on a
    missing element."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, timeout).until(lambda d: "/login/" not in d.current_url)
    except TimeoutException:
        raise AssertionError(f"still on the login page after {timeout:.0f} s: {driver.current_url}") from None
