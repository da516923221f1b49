"""``python -m bench.chaos.child <manage.py args>``: a worker process of a chaos run.

``MEEPO_CHAOS_SKEW`` (seconds) shifts this process's wall clock before Django starts (``time.time`` and
``django.utils.timezone.now``, as tests/support/skewed.py does for the tests): a host whose clock runs ahead.
``MEEPO_CHAOS_REDIS_ONLY=1`` builds every worker on the Redis dispatcher alone, with no failover to the table (the
``--dispatch redis`` mode; tests/support/redis_only.py does the same for the tests).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timedelta
from typing import Any


def skew_clock(skew: float) -> None:
    real_time = time.time
    time.time = lambda: real_time() + skew
    from django.utils import timezone

    real_now = timezone.now

    def skewed_now() -> datetime:
        return real_now() + timedelta(seconds=skew)

    timezone.now = skewed_now


def redis_only() -> None:
    from django_meepo.dispatch import redis_dispatcher
    from django_meepo.worker import Worker

    build = Worker.__init__

    def init(self: Worker, tasks: Any, **kwargs: Any) -> None:
        kwargs["dispatcher_factory"] = redis_dispatcher
        build(self, tasks, **kwargs)

    Worker.__init__ = init  # type: ignore[method-assign]


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    skew = float(os.environ.get("MEEPO_CHAOS_SKEW") or 0)
    if skew:
        skew_clock(skew)
    import django

    django.setup()
    if os.environ.get("MEEPO_CHAOS_REDIS_ONLY") == "1":
        redis_only()
    from django.core.management import execute_from_command_line

    print(f"chaos child {os.getpid()}: clock skew {skew:+g} s, redis only: "
          f"{os.environ.get('MEEPO_CHAOS_REDIS_ONLY') == '1'}", file=sys.stderr, flush=True)
    execute_from_command_line([sys.argv[0], *sys.argv[1:]])


if __name__ == "__main__":
    main()
