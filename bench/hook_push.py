"""``python -m bench.hook_push N BULK``: push jobs 0..N-1 of the benchmark's no-op task with ``push_many``, BULK a
call, in a process of its own, so that its hooks are those of ``$BENCH_HOOKS`` (the harness runs with none):
with ``tracing``, each call is a recorded ``send`` span and every row carries its trace context, as in an
application that traces its pushes.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    import django

    django.setup()
    from django_meepo import Job

    from .djangoproject import MEEPO_NOOP

    jobs, bulk = (int(a) for a in argv)
    for start in range(0, jobs, bulk):
        Job.objects.push_many(MEEPO_NOOP, [str(n).encode() for n in range(start, min(jobs, start + bulk))])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
