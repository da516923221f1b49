"""Which table holds a task's jobs: a task name → its job model, table name and attempt model, resolved once.

A task keeps its jobs in the shared table (``meepo_job``, :class:`~django_meepo.models.Job`) unless it names a
model of its own — ``@task("emails", model="shop.EmailJob")`` or ``MEEPO["TASKS"]["emails"]["MODEL"]`` — a
concrete subclass of :class:`~django_meepo.models.AbstractJob` (Meepo's ``SetTableName``). Its attempt rows go
to the :class:`~django_meepo.models.AbstractAttempt` subclass whose ``job`` ForeignKey points at that model.

Ids are unique per table only, so everything that names a job by id also names its task (Redis keys carry the
task already; result ids read ``task:id``). :func:`for_task` is the hot path: one dict lookup once resolved.
The cache is cleared with the registry's (``registry.clear_cache``: settings changed, a decorator ran).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.apps import apps

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from django.db.models import QuerySet

    from .models import AbstractAttempt, AbstractJob

__all__ = ["Table", "all_tables", "clear", "default", "for_model", "for_task", "model_problem"]


@dataclass(frozen=True, slots=True)
class Table:
    """A job table: its model, its quoted-later name, its attempt model and the model's label."""

    model: type[AbstractJob]
    name: str
    attempt: type[AbstractAttempt]
    label: str

    @property
    def shared(self) -> bool:
        return self.label == "django_meepo.Job"

    def attempt_row(self, **fields: Any) -> AbstractAttempt:
        """An unsaved attempt row of this table (``job_id=...`` among ``fields``)."""
        return self.attempt(**fields)

    def attempts_of(self, using: str, job_ids: Iterable[int]) -> QuerySet[AbstractAttempt]:
        """The attempt rows of ``job_ids`` (the ``job`` ForeignKey is declared by each concrete attempt model)."""
        return self.attempt.objects.using(using).filter(**{"job_id__in": list(job_ids)})


_by_task: dict[str, Table] = {}
_by_model: dict[type, Table] = {}


def clear() -> None:
    _by_task.clear()
    _by_model.clear()


def default() -> Table:
    from .models import Job

    return for_model(Job)


def for_task(task: str) -> Table:
    """The table of ``task``'s jobs; the shared one for a task that names no model, or that this process does
    not know (its jobs can only be in the shared table, as before per-task tables). ConfigurationError for a
    task whose model is not a usable job model (``manage.py check`` says more: meepo.E015)."""
    table = _by_task.get(task)
    if table is None:
        from .registry import declared_model

        label = declared_model(task)
        table = default() if label is None else _resolve_label(task, label)
        _by_task[task] = table
    return table


def _resolve_label(task: str, label: str) -> Table:
    problem = model_problem(label)
    if problem:
        raise ConfigurationError(f"task {task!r}: {problem}")
    return for_model(apps.get_model(label))


def for_model(model: type[AbstractJob]) -> Table:
    table = _by_model.get(model)
    if table is None:
        table = _by_model[model] = Table(model=model, name=model._meta.db_table, attempt=_attempt_model(model),
                                         label=model._meta.label)
    return table


def _attempt_model(model: type[AbstractJob]) -> type[AbstractAttempt]:
    from .models import AbstractAttempt

    for rel in model._meta.related_objects:
        related = rel.related_model
        if isinstance(related, type) and issubclass(related, AbstractAttempt) and rel.field.name == "job":
            return related
    raise ConfigurationError(
        f"job model {model._meta.label} has no attempt model: declare a subclass of "
        f"django_meepo.models.AbstractAttempt with job = models.ForeignKey({model.__name__}, "
        f"on_delete=models.CASCADE)")


def model_problem(label: object) -> str | None:
    """What is wrong with ``label`` as a task's MODEL, or None."""
    from .models import AbstractJob

    if not isinstance(label, str) or label.count(".") != 1:
        return f"MODEL must be an 'app_label.ModelName' string, not {label!r}"
    try:
        model = apps.get_model(label)
    except LookupError:
        return f"MODEL {label!r} is not an installed model"
    if not issubclass(model, AbstractJob) or model._meta.abstract or model._meta.proxy:
        return f"MODEL {label!r} is not a concrete subclass of django_meepo.models.AbstractJob"
    try:
        _attempt_model(model)
    except ConfigurationError as exc:
        return str(exc)
    return None


def all_tables() -> list[Table]:
    """The shared table and every table a declared task names (each once, shared first)."""
    from .registry import declared_model, task_names

    found = [default()]
    for name in task_names():
        label = declared_model(name)
        if label is None or model_problem(label):
            continue
        table = for_model(apps.get_model(label))
        if table not in found:
            found.append(table)
    return found


def tasks_of(table: Table) -> list[str]:
    """The declared tasks whose jobs are in ``table`` (for the shared one: those naming no model)."""
    from .registry import declared_model, task_names

    return [n for n in task_names() if (declared_model(n) or "django_meepo.Job").lower() == table.label.lower()]
