"""Tasks: named queues with a job function and options, declared in settings or with ``@task``.

A task declared in ``MEEPO["TASKS"]`` names its function by dotted path (``FUNCTION``). A function decorated
with ``@task("name", **options)`` declares the task itself; a ``MEEPO["TASKS"]["name"]`` entry without
``FUNCTION`` then only overrides its options (per-deployment tuning). Options are layered:
built-in defaults < ``MEEPO["DEFAULTS"]`` < decorator (or provider) < settings entry.

A *provider* (:func:`register_provider`) declares tasks computed from elsewhere — the Django Tasks backend
declares one task per queue of its ``TASKS`` entries. Provided tasks count as declared in code, like decorated
ones: ``meepo_consume``, the sweeper and ``push`` see them, and a ``MEEPO["TASKS"]`` entry may tune them.

Problems (unknown options, bad values, paths that do not import, a name declared twice) are collected, not
raised at import time: ``checks.py`` reports them with ids, and :func:`get_task` raises
:class:`ConfigurationError` for a task that cannot be used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import autodiscover_modules, import_string

from .conf import get_settings
from .doclinks import doc_link
from .exceptions import ConfigurationError, UnknownTask
from .options import TaskOptions, build_options, normalise_keys, option_errors, task_name_error

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .models import AbstractJob

JobFunction = Callable[..., Any]
# A task with a table of its own names its jobs task:id (a Django Tasks result id, at most 64 characters).
OWN_TABLE_NAME_MAX = 44
# A provider's per-job options: the task's options as one job's payload overrides them (a Django Task's own
# max_attempts). The worker's runner applies them to failures; the sweeper to expired leases.
JobOptions = Callable[[bytes, TaskOptions], TaskOptions]
# A provider's hook for jobs that ended (done, failed, zombie) — by their worker, the sweeper or an operator —
# called after the commit that ended them with their ids and the database alias (see hooks.py).
OnFinished = Callable[[list[int], str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """A declared task: its name, its job function and its options."""

    name: str
    function: JobFunction
    options: TaskOptions
    path: str
    job_options: JobOptions | None = None
    on_finished: OnFinished | None = None
    model: str | None = None  # the task's own job model ("app_label.ModelName"), see tables.py

    def options_for(self, payload: bytes) -> TaskOptions:
        """The options that govern one job of this task (the task's, unless its provider overrides them)."""
        return self.job_options(payload, self.options) if self.job_options else self.options

    def push(self, payload: bytes | None = None, **kwargs: Any) -> AbstractJob:
        """Shortcut for ``Job.objects.push(self.name, payload, **kwargs)``."""
        from django.apps import apps  # the model from the app registry: models.py is above this module

        job: AbstractJob = apps.get_model("django_meepo", "Job").objects.push(self.name, payload, **kwargs)
        return job

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)


@dataclass(slots=True)
class _Declaration:
    name: str
    function: JobFunction | None = None
    path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    origin: str = ""
    job_options: JobOptions | None = None
    on_finished: OnFinished | None = None
    model: str | None = None  # "app_label.ModelName" of the task's own job model (tables.py); None: meepo_job


def _split_model(options: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Lower-cased options without ``model`` (not a tuning option: it says where the jobs are), and the model."""
    rest = dict(options)
    return rest, rest.pop("model", None)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvidedTask:
    """A task declared by a provider: its name, job function and (lower- or upper-case) options."""

    name: str
    function: JobFunction
    options: dict[str, Any] = field(default_factory=dict)
    origin: str = "a provider"
    job_options: JobOptions | None = None
    on_finished: OnFinished | None = None


Provider = Callable[[], "Iterable[ProvidedTask]"]


@dataclass(slots=True)
class Problem:
    """A configuration problem, reported by system checks (``id`` is the check id)."""

    id: str
    task: str | None
    message: str
    hint: str


_decorated: dict[str, list[_Declaration]] = {}
_providers: list[Provider] = []
_lock = threading.Lock()
_discovered = False
_cache: dict[str, Task] = {}


def clear_cache(**_: Any) -> None:
    """Forget resolved tasks and their tables (connected to ``setting_changed``; called when a decorator runs)."""
    from . import tables

    _cache.clear()
    tables.clear()


def _path_of(func: JobFunction) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def task(name: str, **options: Any) -> Callable[[JobFunction], Task]:
    """Declare a task whose job function is the decorated function.

    ``@task("emails", parallel=8, max_failed_times=5)`` — see ``options.py`` for every option.
    The function receives one :class:`~django_meepo.worker.JobContext` argument.
    """
    problem = task_name_error(name)
    if problem:
        raise ConfigurationError(problem)

    def decorate(func: JobFunction) -> Task:
        path = _path_of(func)
        opts, model = _split_model(normalise_keys(options))
        decl = _Declaration(name=name, function=func, path=path, options=opts, origin=f"@task in {func.__module__}",
                            model=model)
        with _lock:
            existing = _decorated.setdefault(name, [])
            # Re-importing the same module (autoreload, tests) is not a second declaration.
            existing[:] = [d for d in existing if d.path != path]
            existing.append(decl)
        clear_cache()
        try:
            built = build_options(get_settings().defaults, decl.options)
        except ValueError:
            built = build_options()  # reported by checks; the Task object stays usable for introspection
        return Task(name=name, function=func, options=built, path=path, model=model)

    return decorate


def register_provider(provider: Provider) -> None:
    """Add a function that returns tasks to declare (called on every lookup that misses the cache; keep it cheap).

    Registering the same function again is a no-op. Call :func:`clear_cache` when what it returns changes.
    """
    with _lock:
        if provider not in _providers:
            _providers.append(provider)
    clear_cache()


def _provided(found: dict[str, _Declaration], problems: list[Problem]) -> None:
    with _lock:
        providers = list(_providers)
    for provider in providers:
        for item in provider():
            problem = task_name_error(item.name)
            if problem:
                problems.append(Problem("meepo.E002", str(item.name), f"{problem} (declared by {item.origin})",
                                        "Rename it where it is declared."))
                continue
            if item.name in found:
                problems.append(Problem("meepo.E006", item.name, f"task {item.name!r} is declared twice: by "
                                        f"{found[item.name].origin} and by {item.origin}",
                                        "Give each task a unique name."))
                continue
            opts, model = _split_model(normalise_keys(item.options))
            found[item.name] = _Declaration(name=item.name, function=item.function, path=_path_of(item.function),
                                            options=opts, origin=item.origin, job_options=item.job_options,
                                            on_finished=item.on_finished, model=model)


def autodiscover() -> None:
    """Import the AUTODISCOVER modules (default ``jobs``) of every installed app, once."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    modules = get_settings().autodiscover
    if modules:
        autodiscover_modules(*modules)


def _declarations() -> tuple[dict[str, _Declaration], list[Problem]]:
    autodiscover()
    conf = get_settings()
    problems: list[Problem] = []
    found: dict[str, _Declaration] = {}
    with _lock:
        decorated = {name: list(decls) for name, decls in _decorated.items()}
    for name, decls in decorated.items():
        if len(decls) > 1:
            where = ", ".join(d.path or "?" for d in decls)
            problems.append(Problem("meepo.E006", name, f"task {name!r} is declared more than once ({where})",
                                    "Give each task a unique name."))
        found[name] = decls[-1]
    _provided(found, problems)
    for name, entry in conf.tasks.items():
        problem = task_name_error(name)
        if problem:
            problems.append(Problem("meepo.E002", str(name), problem, "Rename the task in MEEPO['TASKS']."))
            continue
        if not isinstance(entry, dict):
            problems.append(Problem("meepo.E002", name, f"MEEPO['TASKS'][{name!r}] must be a dict, not "
                                    f"{type(entry).__name__}", "Write {'FUNCTION': 'app.jobs.func', ...}."))
            continue
        opts, model = _split_model(normalise_keys(entry))
        path = opts.pop("function", None)
        if path is not None and name in found and found[name].path != path:
            problems.append(Problem("meepo.E006", name, f"task {name!r} is declared twice: by {found[name].origin} "
                                    f"and in MEEPO['TASKS'] with FUNCTION {path!r}",
                                    "Drop FUNCTION from the settings entry to only override options, or "
                                    "rename one of the tasks."))
            continue
        if name in found:
            base = found[name]  # settings tune options; the function and a provider's hooks stay
            found[name] = replace(base, options={**base.options, **opts}, model=model or base.model)
        else:
            found[name] = _Declaration(name=name, path=path, options=opts, origin="MEEPO['TASKS']", model=model)
    return found, problems


def _resolve(decl: _Declaration) -> tuple[Task | None, list[Problem]]:
    conf = get_settings()
    problems = [Problem("meepo.E003", decl.name, f"task {decl.name!r}: {msg}", "Fix the option's value.")
                for msg in option_errors(normalise_keys(conf.defaults))] if conf.defaults else []
    problems += [Problem("meepo.E003", decl.name, f"task {decl.name!r}: {msg}",
                         f"See the options table, {doc_link('reference.md', 'task-options', 'documentation')}.")
                 for msg in option_errors(decl.options)]
    if decl.model is not None:
        from .tables import model_problem

        if problem := model_problem(decl.model):
            problems.append(Problem("meepo.E015", decl.name, f"task {decl.name!r}: {problem}",
                                    "Point MODEL (or @task(model=...)) at a concrete subclass of "
                                    "django_meepo.models.AbstractJob in an installed app, with an AbstractAttempt "
                                    "subclass whose job ForeignKey points at it (docs/tables.md); or drop it to "
                                    "keep the task's jobs in meepo_job."))
        elif len(decl.name) > OWN_TABLE_NAME_MAX:
            problems.append(Problem("meepo.E015", decl.name, f"task {decl.name!r} has a table of its own, so its "
                                    f"name may have {OWN_TABLE_NAME_MAX} characters at most (a Django Tasks result "
                                    f"id, task:id, fits in 64)", "Give the task a shorter name."))
    func = decl.function
    if func is None:
        if not decl.path or not isinstance(decl.path, str):
            problems.append(Problem("meepo.E004", decl.name, f"task {decl.name!r} has no FUNCTION",
                                    "Set MEEPO['TASKS'][name]['FUNCTION'] to a dotted path, or decorate the "
                                    "function with @django_meepo.task(name)."))
        else:
            try:
                func = import_string(decl.path)
            except Exception as exc:  # a module that fails to import is reported, not raised
                problems.append(Problem("meepo.E004", decl.name, f"task {decl.name!r}: FUNCTION {decl.path!r} "
                                        f"does not import ({type(exc).__name__}: {exc})",
                                        "Fix the dotted path, or the error in that module."))
            else:
                if isinstance(func, Task):
                    func = func.function
                if not callable(func):
                    problems.append(Problem("meepo.E004", decl.name, f"task {decl.name!r}: FUNCTION "
                                            f"{decl.path!r} is not callable", "Point it at a function."))
    if problems or func is None:
        return None, problems
    options = build_options(conf.defaults, decl.options)
    return Task(name=decl.name, function=func, options=options, path=decl.path or _path_of(func),
                job_options=decl.job_options, on_finished=decl.on_finished, model=decl.model), []


def problems() -> list[Problem]:
    """Every configuration problem of every task (for system checks)."""
    decls, found = _declarations()
    for decl in decls.values():
        found += _resolve(decl)[1]
    return found


def task_names() -> list[str]:
    return sorted(_declarations()[0])


def get_task(name: str) -> Task:
    """The usable task of that name; UnknownTask if undeclared, ConfigurationError if misconfigured."""
    cached = _cache.get(name)
    if cached is not None:
        return cached
    decls, dup_problems = _declarations()
    if name not in decls:
        known = ", ".join(sorted(decls)) or "none"
        raise UnknownTask(f"unknown task {name!r} (declared tasks: {known})")
    resolved, found = _resolve(decls[name])
    found += [p for p in dup_problems if p.task == name]
    if resolved is None or found:
        raise ConfigurationError("; ".join(p.message for p in found))
    _cache[name] = resolved
    return resolved


def all_tasks() -> list[Task]:
    """Every task that resolves cleanly (misconfigured ones are left to the checks)."""
    tasks = []
    for name in task_names():
        try:
            tasks.append(get_task(name))
        except ConfigurationError:
            continue
    return tasks


def declared_model(name: str) -> str | None:
    """The MODEL a task declares ("app_label.ModelName"), or None (its jobs are in ``meepo_job``); None also for
    a task not declared. Reads declarations only: a task misconfigured otherwise still has its table."""
    decl = _declarations()[0].get(name)
    return decl.model if decl is not None else None


def is_known(name: str) -> bool:
    return name in _declarations()[0]
