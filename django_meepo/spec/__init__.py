"""The one table of django-meepo's settings: every global ``MEEPO`` key and every task option, defined once.

Each entry names the setting, its default, its validator and its doc line (options also their Meepo
equivalent). ``conf.py`` builds ``get_settings()`` from :data:`SETTINGS`, ``options.py`` builds task options from
:data:`OPTIONS`, ``checks.py`` validates ``MEEPO`` with both, and docs/reference.md's two tables are printed from
them by ``python -m django_meepo.spec --markdown`` (``--write docs/reference.md`` rewrites them in place).

A validator takes a value and returns ``None`` when it is good, or what is wrong with it as a phrase that
completes "``KEY`` …, not ``value``" (e.g. "must be an integer >= 1").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..rates import rate_problem
from ..states import ZOMBIE_DESTINATIONS

Validator = Callable[[Any], str | None]
DISPATCHERS = ("redis", "database")


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """A global key of ``settings.MEEPO``; ``get_settings()`` exposes it as the attribute ``key.lower()``."""

    key: str
    default: Any
    validate: Validator
    doc: str
    hint: str = ""
    check_id: str = "meepo.E001"
    read: Callable[[Any, Any], Any] | None = None  # (value, default) -> the value get_settings() holds

    @property
    def attr(self) -> str:
        return self.key.lower()

    def value_from(self, raw: Mapping[str, Any]) -> Any:
        value = raw.get(self.key, self.default)
        return self.read(value, self.default) if self.read else value


@dataclass(frozen=True, slots=True, kw_only=True)
class Option:
    """A task option: ``name`` in the decorator and on ``TaskOptions``, ``name.upper()`` in settings."""

    name: str
    default: Any
    validate: Validator
    doc: str
    meepo: str = ""  # the equivalent knob of Meepo's MustNewTask, if any
    default_doc: str = ""  # how the docs show the default, when its value alone would mislead

    @property
    def key(self) -> str:
        return self.name.upper()


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


def _optional(check: Validator) -> Validator:
    return lambda v: None if v is None else check(v)


def _positive_int(v: Any) -> str | None:
    return None if is_int(v) and v >= 1 else "must be an integer >= 1"


def _non_negative_int(v: Any) -> str | None:
    return None if is_int(v) and v >= 0 else "must be an integer >= 0"


def _int_between(low: int, high: int) -> Validator:
    return lambda v: None if is_int(v) and low <= v <= high else f"must be an integer from {low} to {high}"


def _positive_number(v: Any) -> str | None:
    return None if is_number(v) and v > 0 else "must be a number of seconds > 0"


def _non_negative_number(v: Any) -> str | None:
    return None if is_number(v) and v >= 0 else "must be a number of seconds >= 0"


def _seconds_between(low: float, high: float) -> Validator:
    return lambda v: None if is_number(v) and low <= v <= high else f"must be a number of seconds from {low} to {high}"


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be True or False"


def _word(v: Any) -> str | None:
    if isinstance(v, str) and v and not any(c.isspace() for c in v):
        return None
    return "must be a non-empty string without spaces"


def _zombie_status(v: Any) -> str | None:
    return None if v in ZOMBIE_DESTINATIONS else f"must be one of {', '.join(ZOMBIE_DESTINATIONS)}"


def _dispatch(v: Any) -> str | None:
    return None if isinstance(v, str) and v in DISPATCHERS else "must be 'redis' or 'database'"


def _module_names(v: Any) -> str | None:
    if isinstance(v, list | tuple) and all(isinstance(m, str) and m for m in v):
        return None
    return "must be a list of module names"


def _json_encoder(v: Any) -> str | None:
    """``None`` or the dotted path of a ``json.JSONEncoder`` subclass (imported to check it)."""
    if v is None:
        return None
    if not isinstance(v, str) or not v or "." not in v:
        return "must be None or the dotted path of a json.JSONEncoder subclass"
    import json

    from django.utils.module_loading import import_string

    try:
        encoder = import_string(v)
    except ImportError as exc:
        return f"{v!r} does not import ({exc})"
    if not (isinstance(encoder, type) and issubclass(encoder, json.JSONEncoder)):
        return f"{v!r} is not a json.JSONEncoder subclass"
    return None


def _redis_cluster(v: Any) -> str | None:
    from ..dispatch.cluster import validate

    return validate(v)


def _dict_of(what: str) -> Validator:
    return lambda v: None if isinstance(v, dict) else f"must be a dict of {what}"


def _retention(v: Any) -> str | None:
    if v is None or (is_number(v) and v > 0):
        return None
    return "must be None (keep finished jobs) or a number of days > 0"


def _as_tuple(value: Any, default: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list | tuple) else tuple(default)


def _as_dict(value: Any, default: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}  # not a dict: checks report it (E002, E003)


_SETTINGS = (
    Setting(key="DATABASE", default="default", validate=_word, doc="database alias holding the job table"),
    Setting(key="REDIS", default="meepo", validate=_word,
            doc="django-redis cache alias used for dispatch (give django-meepo its own)"),
    Setting(key="REDIS_CLUSTER", default=None, validate=_redis_cluster, check_id="meepo.E014",
            doc="Redis Cluster startup nodes (`\"redis://host:port\"`, a list of them, or "
                "`{\"NODES\": [...], \"OPTIONS\": {...}}`): set, django-meepo uses redis-py's `RedisCluster` "
                "instead of the `REDIS` alias — [dispatch.md](dispatch.md#redis-cluster)",
            hint="E.g. ['redis://10.0.0.1:7000', 'redis://10.0.0.2:7000'], or None for the REDIS alias."),
    Setting(key="KEY_PREFIX", default="meepo", validate=_word,
            doc="Redis key prefix (a task may override it with its `KEY_PREFIX` option)"),
    Setting(key="MAX_PAYLOAD_BYTES", default=1024 * 1024, validate=_int_between(1, 64 * 1024 * 1024),
            doc="payloads above this raise `InvalidPayload` (keep it well under `max_allowed_packet`)",
            hint="Keep it well under the server's max_allowed_packet."),
    Setting(key="MAX_RESULT_BYTES", default=1024 * 1024, validate=_positive_int,
            doc="a job's stored result text is cut to this many UTF-8 bytes",
            hint="Keep it well under the server's max_allowed_packet."),
    Setting(key="MAX_ERROR_BYTES", default=64 * 1024, validate=_positive_int,
            doc="a recorded error or traceback is cut to this many UTF-8 bytes, keeping its end",
            hint="Keep it well under the server's max_allowed_packet."),
    Setting(key="AUTODISCOVER", default=["jobs"], validate=_module_names, read=_as_tuple,
            doc="modules imported from each installed app to find `@task` functions",
            hint="E.g. ['jobs']: imports <app>.jobs of each installed app."),
    Setting(key="DEFAULTS", default={}, validate=_dict_of("options"), read=_as_dict, check_id="meepo.E003",
            doc="task options applied to every task"),
    Setting(key="TASKS", default={}, validate=_dict_of("task name → options"), read=_as_dict, check_id="meepo.E002",
            doc="task name → options (`FUNCTION` = dotted path of the job function)"),
    Setting(key="DISPATCH", default="redis", validate=_dispatch,
            doc='how due jobs reach workers: `"redis"` (Redis, failing over to the database while Redis is down) '
                'or `"database"` (no Redis: workers claim from the table) — [dispatch.md](dispatch.md)',
            hint="'redis' dispatches through Redis and fails over to the database while Redis is down; "
                 "'database' needs no Redis at all."),
    Setting(key="WORKER_ALIVE_TTL", default=5.0, validate=_seconds_between(2, 3600),
            doc="seconds (2 to 3600) a worker's alive key lives without refresh (its popped ids come back after it)",
            hint="A worker refreshes its alive key every second; when the key lapses, the ids it popped are given "
                 "back to the queue."),
    Setting(key="RETENTION_DAYS", default=None, validate=_retention,
            doc="the sweeper deletes done/failed jobs finished longer ago "
                "([operations.md](operations.md#retention-the-sweeper-purges-on-its-own)); `None` keeps them",
            hint="E.g. 7: the sweeper then deletes done and failed jobs finished over 7 days ago."),
    Setting(key="POLL_INTERVAL", default=0.5, validate=_seconds_between(0.01, 60),
            doc="longest wait, in seconds (0.01 to 60), between polls of the table by an idle worker on the database "
                "dispatcher (or during a Redis outage)",
            hint="How long an idle worker at most waits between polls of the job table (database dispatcher, and "
                 "during a Redis outage)."),
    Setting(key="PROGRESS_INTERVAL", default=1.0, validate=_seconds_between(0, 3600),
            doc="least time, in seconds (0 to 3600), between two writes of one running job's `job.progress()` "
                "reports; the last report is written when the run ends",
            hint="How often at most a running job's progress reports are written to its row."),
    Setting(key="SCHEDULE", default={}, validate=_dict_of("schedule name → schedule"), read=_as_dict,
            check_id="meepo.E009",
            doc="periodic jobs: schedule name → its `task`, `cron`, `json`, `timezone`, `missed`, `priority`; one job "
                "per tick ([Schedules](#schedules))",
            hint='E.g. {"nightly-report": {"task": "reports", "cron": "0 3 * * *"}} (pip install '
                 'django-meepo[cron]).'),
    Setting(key="JSON_ENCODER", default=None, validate=_json_encoder,
            doc="dotted path of the `json.JSONEncoder` subclass `push(json=…)` and `push_many(json=…)` encode with, "
                "e.g. `\"django.core.serializers.json.DjangoJSONEncoder\"` (`Decimal`, `datetime`, `UUID`); "
                "`None`: the standard encoder",
            hint="E.g. 'django.core.serializers.json.DjangoJSONEncoder'."),
)
SETTINGS: dict[str, Setting] = {s.key: s for s in _SETTINGS}

_OPTIONS = (
    Option(name="parallel", default=4, validate=_positive_int, meepo="SetParallelNum",
           doc="most jobs of this task running at once in one worker, also beside other tasks (at most "
               "`--parallel`, the worker's threads: by default the sum of its tasks' `PARALLEL`)"),
    Option(name="max_failed_times", default=3, validate=_non_negative_int, meepo="SetMaxFailedTimes",
           doc="the n-th failure commits `failed`; 0 = no limit"),
    Option(name="zombie_status", default="todo", validate=_zombie_status, meepo="SetHandleZombieJobsDstStatus",
           doc="where an expired lease goes: " + ", ".join(f"`{s}`" for s in ZOMBIE_DESTINATIONS)),
    Option(name="sweep_period", default=5.0, validate=_positive_number, meepo="SetHandleZombieJobsPeriod",
           doc="seconds between lease and lost-dispatch sweeps"),
    Option(name="lease_timeout", default=30.0, validate=_positive_number, meepo="SetHandleZombieJobsTimeout",
           doc="seconds a claimed job may go without finishing or a heartbeat"),
    Option(name="heartbeat", default=10.0, validate=_positive_number,
           doc="seconds between lease renewals (must be shorter than `LEASE_TIMEOUT`)"),
    Option(name="sweep_limit", default=1000, validate=_positive_int, meepo="SetHandleZombieJobsLimit",
           doc="rows per sweep query (a sweep loops until nothing is left)"),
    Option(name="key_prefix", default=None, validate=_optional(_word), meepo="SetListNamePrefix",
           default_doc='`MEEPO["KEY_PREFIX"]`', doc="Redis key prefix of this task"),
    Option(name="auto_commit", default=True, validate=_bool, meepo="SetAutoCommit",
           doc="`False`: the job function commits itself"),
    Option(name="time_limit", default=None, validate=_optional(_positive_number),
           doc="hard limit in seconds; over it the lease is given up and the worker process replaced"),
    Option(name="retry_backoff", default=1.0, validate=_non_negative_number,
           doc="seconds before the first retry; doubles with each failure"),
    Option(name="retry_backoff_max", default=600.0, validate=_non_negative_number,
           doc="longest delay between retries"),
    Option(name="retry_jitter", default=True, validate=_bool, doc="draw each delay from [delay/2, delay]"),
    Option(name="prefetch", default=None, validate=_optional(_non_negative_int), default_doc="`None` (adapts)",
           doc="jobs of this task a worker claims beyond the task's free slots; unset, as many as its slots finish "
               "within a second at its measured job duration (≤ 100 per slot, ≤ 1,000; never more than a tenth "
               "of the lease)"),
    Option(name="concurrency", default=None, validate=_optional(_positive_int), default_doc="`None` (no limit)",
           doc="most jobs of this task running at once across all workers and hosts, enforced in the database "
               "([Flow control](guide.md#flow-control-global-concurrency-and-rate-limits))"),
    Option(name="key_concurrency", default=None, validate=_optional(_positive_int),
           default_doc="`None` (no limit)",
           doc="most jobs of one `concurrency_key` (given at push) of this task running at once across all "
               "workers"),
    Option(name="rate", default=None, validate=_optional(rate_problem), default_doc="`None` (no limit)",
           doc='most job starts of this task per period across all workers, e.g. `"100/s"`, `"10/m"`, `"5/10s"` '
               "(a token bucket: at most the limit plus one burst in any window)"),
    Option(name="key_rate", default=None, validate=_optional(rate_problem), default_doc="`None` (no limit)",
           doc="most job starts of one `concurrency_key` of this task per period, as `RATE`"),
)
OPTIONS: dict[str, Option] = {o.name: o for o in _OPTIONS}


def setting_problem(setting: Setting, value: Any) -> str | None:
    """The whole message for a bad global value, e.g. "MEEPO['DISPATCH'] must be 'redis' or 'database', not 1"."""
    problem = setting.validate(value)
    return None if problem is None else f"MEEPO[{setting.key!r}] {problem}, not {value!r}"


def option_problem(option: Option, value: Any) -> str | None:
    """The whole message for a bad option value, e.g. "PARALLEL must be an integer >= 1, not 0"."""
    problem = option.validate(value)
    return None if problem is None else f"{option.key} {problem}, not {value!r}"
