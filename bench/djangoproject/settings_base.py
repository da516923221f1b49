"""Settings shared by the benchmark's Django projects. Environment: ``DATABASE_URL`` (a MariaDB server,
``mysql://user:password@host:port``; ``postgres://…`` for the pg-latency workload) and ``BENCH_DB_NAME`` (the
system's own database).

DEBUG is off: with it on, Django keeps every query in memory, which would show up in the RSS figures.
Logging is left to the processes: the harness child configures its own; a worker's warnings reach its log.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlparse

from bench.services import mysql_params

SECRET_KEY = "django-meepo-benchmark-not-secret"
DEBUG = False
ALLOWED_HOSTS: list[str] = []
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def database() -> dict[str, Any]:
    parsed = urlparse(os.environ["DATABASE_URL"])
    if parsed.scheme in ("postgres", "postgresql"):
        return {"ENGINE": "django.db.backends.postgresql", "NAME": os.environ["BENCH_DB_NAME"],
                "USER": unquote(parsed.username or "postgres"), "PASSWORD": unquote(parsed.password or ""),
                "HOST": parsed.hostname or "127.0.0.1", "PORT": str(parsed.port or 5432)}
    params = mysql_params(os.environ["DATABASE_URL"])
    return {"ENGINE": "django.db.backends.mysql", "NAME": os.environ["BENCH_DB_NAME"], "USER": params["user"],
            "PASSWORD": params["password"], "HOST": params["host"], "PORT": str(params["port"]),
            "OPTIONS": {"charset": "utf8mb4"}}

