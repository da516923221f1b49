"""django-tasks job functions of the benchmark (run by django-tasks-db's ``db_worker``)."""

from __future__ import annotations

from django_tasks import task

from bench.recorder import record


@task()
def noop(number: int) -> None:
    record(number)
