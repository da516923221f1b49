"""System checks (``manage.py check``): every misconfiguration gets an id and says how to fix it.

| id         | what                                                                    |
|------------|-------------------------------------------------------------------------|
| meepo.E001 | ``MEEPO`` is not a dict, has an unknown key, or a global value is wrong (``DISPATCH``, …) |
| meepo.E002 | a ``MEEPO["TASKS"]`` entry is malformed (name, type)                     |
| meepo.E003 | a task option is unknown or has a bad value                              |
| meepo.E004 | a task's function is missing, does not import or is not callable         |
| meepo.E005 | ``MEEPO["DATABASE"]`` is not a database alias                            |
| meepo.E006 | a task is declared twice                                                 |
| meepo.E007 | ``MEEPO["REDIS"]`` is not a django-redis cache alias (unless ``DISPATCH`` is ``"database"``) |
| meepo.E008 | ``admin_actions`` is not installed (registered by ``django_meepo.admin.checks``) |
| meepo.E009 | ``MEEPO["SCHEDULE"]`` or one of its entries is malformed (keys, cron, timezone, missed, json, priority) |
| meepo.E010 | a schedule names an unknown task                                          |
| meepo.E011 | ``MEEPO["SCHEDULE"]`` is set but ``cronsim`` is not installed (``pip install django-meepo[cron]``) |
| meepo.E012 | a queue name cannot be a django-meepo task name (tasks/queues.py)       |
| meepo.E013 | a queue's ``OPTIONS`` are malformed (tasks/queues.py)                   |
| meepo.E014 | ``MEEPO["REDIS_CLUSTER"]`` is malformed (nodes, ``OPTIONS``; dispatch/cluster.py) |
| meepo.E015 | a task's ``MODEL`` is not a concrete ``AbstractJob`` subclass with an attempt model (registry.py) |
| meepo.E016 | a task's job or attempt table is not in the database (tag ``meepo_tables``, run by meepo_consume) |
| meepo.E017 | a task's job model is routed to another database than ``MEEPO["DATABASE"]`` (not supported yet) |
| meepo.W001 | the Redis alias is also the default cache (``cache.clear()`` would FLUSHDB the queue) |
| meepo.W002 | Redis ``maxmemory-policy`` is not ``noeviction`` (tag ``meepo_redis``, run by ``meepo_consume``) |
| meepo.W003 | ``max_allowed_packet`` (MySQL, MariaDB) is too small for ``MAX_PAYLOAD_BYTES`` (database check) |
| meepo.W004 | the Redis cache sets no ``SOCKET_TIMEOUT`` or ``SOCKET_CONNECT_TIMEOUT`` (a hung Redis blocks) |
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import connections

from .conf import get_settings, raw_settings
from .doclinks import doc_link
from .options import normalise_keys, option_errors
from .spec import SETTINGS, setting_problem

REDIS_TAG = "meepo_redis"
# Checks meepo_consume runs before a worker starts (with REDIS_TAG), and `check --deploy --tag meepo_tables`.
TABLES_TAG = "meepo_tables"


def _global_errors(raw: Any) -> list[CheckMessage]:
    """Each key of ``MEEPO`` against its validator in ``spec.SETTINGS``; ``DEFAULTS`` also option by option."""
    if not isinstance(raw, dict):
        return [Error(f"MEEPO must be a dict, not {type(raw).__name__}", id="meepo.E001",
                      hint=f"See {doc_link('reference.md', 'settings-meepo', 'use-it')} for the MEEPO setting.")]
    errors: list[CheckMessage] = []
    for key, value in raw.items():
        setting = SETTINGS.get(key)
        if setting is None:
            errors.append(Error(f"MEEPO has an unknown key {key!r}", id="meepo.E001",
                                hint=f"Known keys: {', '.join(sorted(SETTINGS))}."))
        elif problem := setting_problem(setting, value):
            errors.append(Error(problem, id=setting.check_id, hint=setting.hint or None))
    defaults = raw.get("DEFAULTS", {})
    if isinstance(defaults, dict):
        hint = f"See {doc_link('reference.md', 'task-options', 'documentation')}."
        errors += [Error(f"MEEPO['DEFAULTS']: {m}", id="meepo.E003", hint=hint)
                   for m in option_errors(normalise_keys(defaults))]
    return errors


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    raw = raw_settings()
    errors = _global_errors(raw)
    if errors and not isinstance(raw, dict):
        return errors
    conf = get_settings()
    if isinstance(conf.database, str) and conf.database not in connections:
        errors.append(Error(f"MEEPO['DATABASE'] is {conf.database!r}, which is not in DATABASES",
                            id="meepo.E005", hint="Name one of your DATABASES aliases."))
    if conf.dispatch != "database" and conf.redis_cluster is None:  # the Cluster client needs no alias
        errors += _redis_alias_errors(conf.redis)
    if isinstance(raw.get("TASKS", {}), dict):
        from .registry import problems

        errors += [Error(p.message, id=p.id, hint=p.hint) for p in problems()]
    errors += check_schedule()
    return errors


def check_schedule() -> list[CheckMessage]:
    """Each ``MEEPO["SCHEDULE"]`` entry (schedule.py): E009 malformed, E010 unknown task, E011 no cronsim."""
    from . import schedule

    return [Error(p.message, id=p.id, hint=p.hint or None) for p in schedule.problems()]


def _redis_alias_errors(alias: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    caches = getattr(settings, "CACHES", {})
    entry = caches.get(alias) if isinstance(alias, str) else None
    if entry is None:
        errors.append(Error(f"MEEPO['REDIS'] is {alias!r}, which is not in CACHES", id="meepo.E007",
                            hint="Add a django-redis cache for django-meepo alone, e.g. CACHES['meepo'] = "
                                 "{'BACKEND': 'django_redis.cache.RedisCache', 'LOCATION': 'redis://…/1'}, "
                                 "or set MEEPO['DISPATCH'] = 'database' to run without Redis."))
    elif "django_redis" not in str(entry.get("BACKEND", "")):
        errors.append(Error(f"CACHES[{alias!r}] must use django_redis.cache.RedisCache, not "
                            f"{entry.get('BACKEND')!r}", id="meepo.E007"))
    else:
        if alias == "default":
            errors.append(Warning("django-meepo dispatches through the 'default' cache: cache.clear() there would "
                                  "FLUSHDB and drop the queue (the sweeper would recover it, slowly)",
                                  id="meepo.W001", hint="Give django-meepo a cache alias (and Redis db) of its own."))
        options = entry.get("OPTIONS") or {}
        missing = [k for k in ("SOCKET_CONNECT_TIMEOUT", "SOCKET_TIMEOUT") if not options.get(k)]
        if missing:
            errors.append(Warning(
                f"CACHES[{alias!r}]['OPTIONS'] has no {' or '.join(missing)}: redis-py then waits for ever, so a "
                f"Redis that hangs (rather than refuses) blocks pushes and workers instead of failing over to the "
                f"database", id="meepo.W004",
                hint="Set e.g. 'OPTIONS': {'SOCKET_CONNECT_TIMEOUT': 2, 'SOCKET_TIMEOUT': 5} "
                     f"(see {doc_link('dispatch.md', 'redis-client-timeouts', 'use-it')})."))
    return errors


@register(REDIS_TAG, deploy=True)
def check_redis(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Ask Redis itself: eviction would silently drop queue entries (found again only by the sweeper)."""
    if get_settings().dispatch == "database":
        return []
    try:
        from .dispatch import redis_client

        policies = _eviction_policies(redis_client())
    except Exception as exc:
        return [Warning(f"could not ask Redis for its maxmemory-policy: {exc}", id="meepo.W002")]
    policy = next((p for p in policies if p not in ("noeviction", b"noeviction")), None)
    if policy is not None:
        return [Warning(f"Redis maxmemory-policy is {policy!r}: under memory pressure Redis may evict "
                        f"django-meepo's queues", id="meepo.W002",
                        hint="Set maxmemory-policy noeviction on the Redis django-meepo uses.")]
    return []


def _eviction_policies(client: Any) -> list[Any]:
    """``maxmemory-policy`` of the Redis, or of each primary of a Redis Cluster."""
    from redis.cluster import RedisCluster

    if isinstance(client, RedisCluster):
        answers: Any = client.config_get("maxmemory-policy", target_nodes=RedisCluster.PRIMARIES)
        if isinstance(answers, dict) and "maxmemory-policy" not in answers:  # one answer per node
            return [a.get("maxmemory-policy") for a in answers.values()]
        return [answers.get("maxmemory-policy")]
    return [client.config_get("maxmemory-policy").get("maxmemory-policy")]
@register()
def check_table_routing(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every job table is read and written on ``MEEPO["DATABASE"]``: a model a router sends elsewhere would be
    written there by Django (the admin) and here by django-meepo — two tables of the same name, jobs lost."""
    from django.db import router

    from .tables import all_tables, tasks_of

    conf = get_settings()
    if not isinstance(conf.database, str) or conf.database not in connections:
        return []
    errors: list[CheckMessage] = []
    for table in all_tables():
        alias = router.db_for_write(table.model)
        if alias != conf.database:
            names = ", ".join(repr(n) for n in tasks_of(table)) or "no task"
            errors.append(Error(
                f"job model {table.label} (tasks {names}) is routed to database {alias!r}, but django-meepo "
                f"reads and writes every job table on MEEPO['DATABASE'] ({conf.database!r})", id="meepo.E017",
                hint=f"Route {table.label} and {table.attempt._meta.label} to {conf.database!r} in your "
                     f"DATABASE_ROUTERS (db_for_read, db_for_write, allow_migrate); a job table on a database of "
                     f"its own is not supported yet."))
    return errors


@register(TABLES_TAG, deploy=True)
def check_tables_migrated(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Each task's job table and attempt table exist. Run by ``meepo_consume`` (and ``check --deploy --database
    default``), never by ``migrate``: migrate runs the database checks before it migrates, so a missing table
    would stop the command that creates it."""
    from .tables import all_tables, tasks_of

    conf = get_settings()
    if not databases or conf.database not in databases or conf.database not in connections:
        return []
    try:
        existing = set(connections[conf.database].introspection.table_names())
    except Exception as exc:
        return [Warning(f"could not list the tables of database {conf.database!r}: {exc}", id="meepo.E016")]
    errors: list[CheckMessage] = []
    for table in all_tables():
        if table.shared:
            continue  # django_meepo's own migrations; `migrate` says when they have not run
        missing = [t for t in (table.name, table.attempt._meta.db_table) if t not in existing]
        if missing:
            app = table.model._meta.app_label
            errors.append(Error(
                f"job model {table.label} (tasks {', '.join(repr(n) for n in tasks_of(table))}) has no table "
                f"{' or '.join(missing)} in database {conf.database!r}", id="meepo.E016",
                hint=f"Run `manage.py makemigrations {app}` and `manage.py migrate {app}`."))
    return errors


PACKET_HEADROOM = 64 * 1024  # the rest of the INSERT: columns, idempotency key, SQL text


@register(Tags.database, REDIS_TAG)
def check_packet_size(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A payload near MAX_PAYLOAD_BYTES must fit in one packet once escaped (binary escaping can double it);
    otherwise the server drops the connection ("gone away") instead of django-meepo refusing the payload."""
    conf = get_settings()
    if not databases or conf.database not in databases or conf.database not in connections:
        return []
    connection = connections[conf.database]
    if connection.vendor != "mysql":
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@max_allowed_packet")
            packet = int(cursor.fetchone()[0])
    except Exception as exc:
        return [Warning(f"could not read max_allowed_packet from database {conf.database!r}: {exc}",
                        id="meepo.W003")]
    need = 2 * conf.max_payload_bytes + PACKET_HEADROOM
    if packet < need:
        return [Warning(f"MEEPO['MAX_PAYLOAD_BYTES'] is {conf.max_payload_bytes}, but the server's "
                        f"max_allowed_packet is {packet}: a payload near the limit may not fit in one packet once "
                        f"escaped (needs {need})", id="meepo.W003",
                        hint=f"Lower MAX_PAYLOAD_BYTES to {max(1, (packet - PACKET_HEADROOM) // 2)} or less, or "
                             f"raise max_allowed_packet to {need} or more.")]
    return []
