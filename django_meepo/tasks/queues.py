"""From the ``TASKS`` setting to django-meepo tasks: each queue of a MeepoBackend is one django-meepo task.

```python
TASKS = {
    "default": {
        "BACKEND": "django_meepo.tasks.MeepoBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {
            "MAX_ATTEMPTS": 3,          # every queue of this backend; any django-meepo task option works too
            "RETRY_BACKOFF": 1,         #   (PARALLEL, LEASE_TIMEOUT, TIME_LIMIT, RETRY_BACKOFF_MAX, ...)
            "QUEUES": {"emails": {"MAX_ATTEMPTS": 5, "PARALLEL": 8}},   # per queue, over the above
        },
    },
}
```
``MAX_ATTEMPTS`` is django-meepo's ``MAX_FAILED_TIMES`` (the n-th failure is final; 0 = no limit).
``AUTO_COMMIT`` cannot be set: the queue's job function commits when the Task returns.
Nothing here imports the Tasks framework, so the registry can ask at any time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from ..doclinks import doc_link
from ..options import OPTION_NAMES, normalise_keys, task_name_error

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "default"
QUEUES_KEY = "queues"
ALIASES = {"max_attempts": "max_failed_times"}
FORBIDDEN = {"auto_commit": "the queue's job function commits when the Task returns; AUTO_COMMIT is always True"}


@dataclass(frozen=True, slots=True)
class Problem:
    id: str
    message: str
    hint: str


def is_meepo_backend(path: Any) -> bool:
    if not isinstance(path, str) or not path:
        return False
    if path in ("django_meepo.tasks.MeepoBackend", "django_meepo.tasks.backend.MeepoBackend"):
        return True
    try:
        cls = import_string(path)
    except ImportError:
        return False
    return bool(getattr(cls, "is_meepo_backend", False))


def meepo_backends() -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(alias, params)`` of every ``TASKS`` entry whose BACKEND is a MeepoBackend."""
    tasks = getattr(settings, "TASKS", None)
    if not isinstance(tasks, Mapping):
        return
    for alias, params in tasks.items():
        if isinstance(params, Mapping) and is_meepo_backend(params.get("BACKEND")):
            yield str(alias), params


def queue_names(params: Mapping[str, Any]) -> list[str]:
    queues = params.get("QUEUES", [DEFAULT_QUEUE])
    if isinstance(queues, str) or not isinstance(queues, list | tuple | set | frozenset):
        return []
    return [q for q in dict.fromkeys(queues) if isinstance(q, str)]


def _options(params: Mapping[str, Any]) -> dict[str, Any]:
    options = params.get("OPTIONS", {})
    return normalise_keys(options) if isinstance(options, Mapping) else {}


def _translate(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in normalise_keys(values).items():
        if key == QUEUES_KEY or key in FORBIDDEN:
            continue
        out[ALIASES.get(key, key)] = value
    return out


def queue_options(params: Mapping[str, Any], queue: str) -> dict[str, Any]:
    """django-meepo task options of ``queue``: the backend's OPTIONS, then OPTIONS["QUEUES"][queue] over them."""
    options = _options(params)
    per_queue = options.get(QUEUES_KEY, {})
    own = per_queue.get(queue, {}) if isinstance(per_queue, Mapping) else {}
    return {**_translate(options), **_translate(own if isinstance(own, Mapping) else {})}


def _layer_problems(where: str, values: Any) -> list[Problem]:
    if not isinstance(values, Mapping):
        return [Problem("meepo.E013", f"{where} must be a dict of options, not {type(values).__name__}",
                        "Write {'MAX_ATTEMPTS': 3, 'RETRY_BACKOFF': 1, ...}.")]
    problems = []
    keys = normalise_keys(values)
    known = OPTION_NAMES | set(ALIASES) | {QUEUES_KEY}
    for key in keys:
        if key in FORBIDDEN:
            problems.append(Problem("meepo.E013", f"{where} sets {key.upper()}: {FORBIDDEN[key]}",
                                    f"Remove {key.upper()}."))
        elif key not in known:
            problems.append(Problem("meepo.E013", f"{where} has an unknown option {key.upper()!r}",
                                    f"Use MAX_ATTEMPTS, QUEUES or a django-meepo task option (see "
                                    f"{doc_link('tasks.md', 'retries', 'django-tasks')})."))
    if "max_attempts" in keys and "max_failed_times" in keys:
        problems.append(Problem("meepo.E013", f"{where} sets both MAX_ATTEMPTS and MAX_FAILED_TIMES",
                                "They are the same option: keep MAX_ATTEMPTS."))
    return problems


def config_problems(alias: str, params: Mapping[str, Any]) -> list[Problem]:
    """What is wrong with one MeepoBackend entry of ``TASKS`` (option values are checked per task, meepo.E003)."""
    where = f"TASKS[{alias!r}]"
    problems: list[Problem] = []
    raw_queues = params.get("QUEUES", [DEFAULT_QUEUE])
    queues = queue_names(params)
    if not queues:
        problems.append(Problem("meepo.E011", f"{where}['QUEUES'] must list the queue names, not {raw_queues!r}",
                                "Each queue is a django-meepo task that workers consume: list them, e.g. "
                                "['default', 'emails']."))
    for queue in queues:
        error = task_name_error(queue)
        if error:
            problems.append(Problem("meepo.E012", f"{where}: queue {queue!r} cannot be a django-meepo task: "
                                    f"{error}", "Rename the queue."))
    options = params.get("OPTIONS", {})
    problems += _layer_problems(f"{where}['OPTIONS']", options)
    per_queue = normalise_keys(options).get(QUEUES_KEY, {}) if isinstance(options, Mapping) else {}
    if not isinstance(per_queue, Mapping):
        problems.append(Problem("meepo.E013", f"{where}['OPTIONS']['QUEUES'] must map queue names to options",
                                "Write {'emails': {'MAX_ATTEMPTS': 5}}."))
        return problems
    for queue, values in per_queue.items():
        if queue not in queues:
            problems.append(Problem("meepo.E013", f"{where}['OPTIONS']['QUEUES'] configures {queue!r}, which is "
                                    f"not in {where}['QUEUES']", "Add the queue to QUEUES or drop its options."))
        inner = f"{where}['OPTIONS']['QUEUES'][{queue!r}]"
        problems += _layer_problems(inner, values)
        if isinstance(values, Mapping) and QUEUES_KEY in normalise_keys(values):
            problems.append(Problem("meepo.E013", f"{inner} may not nest QUEUES", "Remove it."))
    return problems
