"""Settings of the demo and test project.

Services come from the environment, with this machine's defaults:

* ``DATABASE_URL`` — ``mysql://root@127.0.0.1:3306/meepo`` (also ``postgres://…`` and ``sqlite:///path``)
* ``REDIS_URL`` — ``redis://127.0.0.1:6379/0``
* ``MEEPO_KEY_PREFIX`` — Redis key prefix (tests give every run its own)
* ``MEEPO_REDIS_SENTINELS`` — ``host:port,…`` of Redis sentinels; REDIS_URL then names the master
* ``MEEPO_REDIS_CLUSTER`` — ``redis://host:port,…``: the startup nodes of a Redis Cluster (``MEEPO["REDIS_CLUSTER"]``)
* ``MEEPO_DISPATCH`` — ``redis`` (default; fails over to the database while Redis is down) or ``database``
* ``MEEPO_DB_NAME`` — overrides the database name (tests point worker subprocesses at the test database)
* ``MEEPO_TEST_DB_NAME`` — the test database's name (with SQLite: a file beside the database, unless a path);
  unset, a name of this run's own (``test_meepo_<pid>_<random>``), exported to child processes
* ``MEEPO_PROGRESS_INTERVAL`` — ``MEEPO["PROGRESS_INTERVAL"]`` when set (tests of ``job.progress``)
* ``MEEPO_SCHEDULE`` — ``MEEPO["SCHEDULE"]`` as JSON when set (tests of periodic jobs)
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-meepo-test-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
TIME_ZONE = "UTC"


def database_from_url(url: str) -> dict[str, Any]:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = parsed.path[1:] if parsed.path.startswith("//") else parsed.path
        # Many threads and processes write: wait for the lock, take it at BEGIN (a deferred transaction that
        # reads first cannot wait for it), and let readers go on while one writes (WAL).
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path or str(BASE_DIR / "meepo.sqlite3"),
                "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE",
                            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}}
    engine = {"mysql": "django.db.backends.mysql", "mariadb": "django.db.backends.mysql",
              "postgres": "django.db.backends.postgresql", "postgresql": "django.db.backends.postgresql"}
    if parsed.scheme not in engine:
        raise ValueError(f"DATABASE_URL scheme {parsed.scheme!r} is not one of {', '.join(engine)} or sqlite")
    db: dict[str, Any] = {
        "ENGINE": engine[parsed.scheme],
        "NAME": parsed.path.lstrip("/") or "meepo",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "127.0.0.1",
        "PORT": str(parsed.port or ""),
    }
    if engine[parsed.scheme].endswith("mysql"):
        db["OPTIONS"] = {"charset": "utf8mb4", "init_command": os.environ.get("MEEPO_DB_INIT_COMMAND", "SELECT 1")}
    return db


DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL", "mysql://root@127.0.0.1:3306/meepo"))}
if os.environ.get("MEEPO_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["MEEPO_DB_NAME"]
    if DATABASES["default"]["ENGINE"].endswith("sqlite3") and "/" not in os.environ["MEEPO_DB_NAME"]:
        DATABASES["default"]["NAME"] = str(Path(str(database_from_url(os.environ.get("DATABASE_URL", ""))["NAME"]))
                                           .with_name(f"{os.environ['MEEPO_DB_NAME']}.sqlite3"))  # beside the URL's
if not os.environ.get("MEEPO_TEST_DB_NAME"):
    # Unique per run, so two runs against one server never share (and drop) a test database. Exported, so every
    # child process (worker subprocesses, scripts) sees the same name as this one.
    os.environ["MEEPO_TEST_DB_NAME"] = f"test_meepo_{os.getpid()}_{secrets.token_hex(3)}"
_test_name = os.environ["MEEPO_TEST_DB_NAME"]
if DATABASES["default"]["ENGINE"].endswith("sqlite3") and "/" not in _test_name:
    _test_name = str(Path(str(DATABASES["default"]["NAME"])).with_name(f"{_test_name}.sqlite3"))  # beside NAME
DATABASES["default"]["TEST"] = {"NAME": _test_name}

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "meepo": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2,
                    "SOCKET_TIMEOUT": float(os.environ.get("MEEPO_REDIS_SOCKET_TIMEOUT", "5"))},
    },
}
if os.environ.get("MEEPO_REDIS_SENTINELS"):
    # Redis through Sentinel, with django-redis's own client (docs/dispatch.md): REDIS_URL names the master
    # (redis://<master name>/<db>), MEEPO_REDIS_SENTINELS lists the sentinels as host:port,host:port.
    CACHES["meepo"]["OPTIONS"].update({
        "CLIENT_CLASS": "django_redis.client.SentinelClient",
        "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
        "SENTINELS": [(host, int(port)) for host, port in
                      (a.rsplit(":", 1) for a in os.environ["MEEPO_REDIS_SENTINELS"].split(","))],
    })

MEEPO: dict[str, Any] = {
    "DATABASE": "default",
    "REDIS": "meepo",
    "KEY_PREFIX": os.environ.get("MEEPO_KEY_PREFIX", "meepo"),
    "DISPATCH": os.environ.get("MEEPO_DISPATCH", "redis"),
    "TASKS": {
        "demo": {"FUNCTION": "testproject.jobs.demo", "PARALLEL": 4},
    },
}
if os.environ.get("MEEPO_REDIS_CLUSTER"):
    MEEPO["REDIS_CLUSTER"] = os.environ["MEEPO_REDIS_CLUSTER"].split(",")
if os.environ.get("MEEPO_POLL_INTERVAL"):
    MEEPO["POLL_INTERVAL"] = float(os.environ["MEEPO_POLL_INTERVAL"])
if os.environ.get("MEEPO_PROGRESS_INTERVAL"):
    MEEPO["PROGRESS_INTERVAL"] = float(os.environ["MEEPO_PROGRESS_INTERVAL"])
if os.environ.get("MEEPO_SCHEDULE"):
    MEEPO["SCHEDULE"] = json.loads(os.environ["MEEPO_SCHEDULE"])

# Django's Tasks framework (django.tasks; the django-tasks backport on Django 5.2) on django-meepo: each queue
# is a django-meepo task (`manage.py meepo_consume default emails slow`). Short leases so fault tests are quick.
TASKS = {
    "default": {
        "BACKEND": "django_meepo.tasks.MeepoBackend",
        "QUEUES": ["default", "emails", "slow"],
        "OPTIONS": {
            "MAX_ATTEMPTS": 3,
            "LEASE_TIMEOUT": 3,
            "HEARTBEAT": 1,
            "SWEEP_PERIOD": 1,
            "RETRY_BACKOFF": 0.2,
            "RETRY_JITTER": False,
            "QUEUES": {"emails": {"MAX_ATTEMPTS": 2, "PARALLEL": 2}, "slow": {"PARALLEL": 1}},
        },
    },
}

INSTALLED_APPS = [
    # Before django.contrib.admin, as django-admin-actions' README says: its site-wide template overrides then
    # apply, and the tests show that other models' admin pages still work.
    "admin_actions",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_meepo",
    "testproject",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "testproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"django_meepo": {"handlers": ["console"], "level": os.environ.get("MEEPO_LOG_LEVEL", "WARNING")}},
}
