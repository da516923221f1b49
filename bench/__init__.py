"""The benchmark harness of django-meepo (issue 6): django-meepo beside Celery, RQ, Dramatiq, Huey and
django-tasks-db on the same machine, in the same run.

Layout: ``cli`` parses arguments and prints; ``runner`` starts one child process (``child``) per system and
workload, so each system keeps its own settings, imports and state; ``systems/`` holds one adapter per system
and ``apps/`` the job functions their workers import; ``workloads`` and ``meepo_workloads`` are what is
measured; ``recorder`` is what a job function records; ``stats`` and ``report`` turn samples into tables.

django-meepo is driven only through its public API (``Job.objects.push``, ``push_many``, ``@task``) and its
management commands (``meepo_consume``, ``meepo_sweep``), so the harness survives rewrites of its core.
"""

from .djangoproject.hooks import hide

# $BENCH_HOOKS hides the optional extras a benchmark process runs without (bench/djangoproject/hooks.py). Here,
# first of all, because redis-py imports OpenTelemetry when it can, and the harness imports redis before Django.
hide()
