"""``python -m bench.scale_helper VERB …``: the Django side of the scale workloads, in a process of its own.

The scale workloads (bench/scale_workloads.py) run django-meepo on servers other than the harness child's own
(a private MariaDB on a bridge, PostgreSQL), so what needs Django runs here, configured by the environment
(``bench.djangoproject.settings_meepo``):

* ``migrate`` — create the tables;
* ``reset`` — delete every job (``flush``), between two measurements;
* ``push N`` — N no-op jobs through ``push_many``, ``BULK`` per call;
* ``latency N GAP`` — N latency jobs pushed one per transaction about GAP s apart; prints ``{job id: commit time}``
  as JSON (the time is taken by an on-commit callback registered before the push, so before it is dispatched);
* ``consume-polling ARGS…`` — ``meepo_consume ARGS…`` with LISTEN/NOTIFY turned off (the polling fallback, as
  behind PgBouncer in transaction mode): the database dispatcher never builds its listener.
"""

from __future__ import annotations

import json
import random
import sys
import time

BULK = 1_000


def push(count: int) -> None:
    from django_meepo import Job

    from .djangoproject import MEEPO_NOOP

    for start in range(0, count, BULK):
        Job.objects.push_many(MEEPO_NOOP, [str(n).encode() for n in range(start, min(count, start + BULK))])


def latency(count: int, gap: float) -> None:
    from django.db import transaction

    from django_meepo import Job

    from .djangoproject import MEEPO_LATENCY

    committed: dict[int, float] = {}
    for _ in range(count):
        at: list[float] = []
        with transaction.atomic():
            transaction.on_commit(lambda at=at: at.append(time.time()))  # type: ignore[misc]
            job = Job.objects.push(MEEPO_LATENCY, b"")
        committed[job.id] = at[0]
        time.sleep(gap * random.uniform(0.5, 1.5))
    print(json.dumps(committed))


def consume_polling(args: list[str]) -> None:
    from django.core.management import execute_from_command_line

    from django_meepo.dispatch.database import DatabaseDispatcher

    DatabaseDispatcher._listening = lambda self, sources: None  # type: ignore[method-assign,assignment]
    execute_from_command_line([sys.argv[0], "meepo_consume", *args])


def main(argv: list[str]) -> None:
    import django
    from django.core.management import call_command

    django.setup()
    verb, *rest = argv
    if verb == "migrate":
        call_command("migrate", verbosity=0)
    elif verb == "reset":
        call_command("flush", interactive=False, verbosity=0)
    elif verb == "push":
        push(int(rest[0]))
    elif verb == "latency":
        latency(int(rest[0]), float(rest[1]))
    elif verb == "consume-polling":
        consume_polling(rest)
    else:
        raise SystemExit(f"unknown verb {verb!r}: migrate, reset, push N, latency N GAP, consume-polling ARGS")


if __name__ == "__main__":
    main(sys.argv[1:])
