"""Settings of django-meepo under benchmark: producer (the harness) and workers (``meepo_consume``) alike.

Environment: ``DATABASE_URL``, ``BENCH_DB_NAME`` (see settings_base), ``REDIS_URL`` (its own Redis database
number, or the private redis-server of the flush workload) and ``MEEPO_KEY_PREFIX`` (one per harness child);
``BENCH_MEEPO_DISPATCH`` — ``database`` for the pg-latency workload (default ``redis``).
Only the benchmark's own tasks are declared, so a worker's sweeper sweeps nothing else.
"""

from __future__ import annotations

import os

from .settings_base import *  # noqa: F403
from .settings_base import database

INSTALLED_APPS = ["django_meepo", "bench.djangoproject"]
DATABASES = {"default": database()}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "meepo": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": os.environ["REDIS_URL"],
              "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 5}},
}
MEEPO = {"DATABASE": "default", "REDIS": "meepo", "KEY_PREFIX": os.environ["MEEPO_KEY_PREFIX"],
         "DISPATCH": os.environ.get("BENCH_MEEPO_DISPATCH", "redis")}
