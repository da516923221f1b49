"""``python -m tests.support.skewed <manage.py args>``: a manage.py command on a host whose clock is wrong.

``MEEPO_TEST_CLOCK_SKEW`` (seconds, may be negative) shifts this process's wall clock before Django starts:
``time.time`` and ``django.utils.timezone.now`` are patched, so everything that reads the local time through them
(the code under test, Django's ``auto_now``, log records) sees the shifted time. ``datetime.datetime.now`` is a C
type's method and is left alone: replacing the class would hand database drivers a subclass they may not adapt.
The monotonic clock is not shifted (a host's wrong clock does not make time pass faster). The process says so on
stderr (:data:`SKEW_BANNER`), so a test can check the skew is in effect.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timedelta

SKEW_BANNER = "meepo-test: this process's clock is shifted by"


def install(skew: float) -> None:
    real_time = time.time

    def skewed_time() -> float:
        return real_time() + skew

    time.time = skewed_time
    from django.utils import timezone

    real_now = timezone.now

    def skewed_now() -> datetime:
        return real_now() + timedelta(seconds=skew)

    timezone.now = skewed_now


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    skew = float(os.environ.get("MEEPO_TEST_CLOCK_SKEW", "0"))
    install(skew)
    import django

    django.setup()
    from django.core.management import execute_from_command_line

    print(f"{SKEW_BANNER} {skew:+g} s", file=sys.stderr, flush=True)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
