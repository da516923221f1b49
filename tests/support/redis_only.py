"""``python -m tests.support.redis_only meepo_consume <task> …``: a manage.py command whose workers use the Redis
dispatcher alone.

``MEEPO["DISPATCH"] = "redis"`` gives every worker the failover dispatcher, which claims due jobs straight from
the table while Redis is down and for ten seconds after it answers again. A test of what the sweeper dispatches
again through Redis must not be helped by that: here every ``Worker`` (its fetches and its sweeper) is built on
``redis_dispatcher()``. The worker says so on stderr (``REDIS_ONLY_BANNER``), so a test can check it is in effect.
"""

from __future__ import annotations

import os
import sys
from typing import Any

REDIS_ONLY_BANNER = "meepo-test: this worker uses the Redis dispatcher alone (no failover)"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    import django

    django.setup()
    from django.core.management import execute_from_command_line

    from django_meepo.dispatch import redis_dispatcher
    from django_meepo.dispatch.redis import RedisDispatcher
    from django_meepo.worker import Worker

    build = Worker.__init__

    def redis_only(self: Worker, tasks: Any, **kwargs: Any) -> None:
        kwargs["dispatcher_factory"] = redis_dispatcher
        build(self, tasks, **kwargs)
        assert type(self.dispatcher) is RedisDispatcher
        print(REDIS_ONLY_BANNER, file=sys.stderr, flush=True)

    Worker.__init__ = redis_only  # type: ignore[method-assign]
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
