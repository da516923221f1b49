"""The Django side of the benchmark: settings for django-meepo and for django-tasks-db, and their job functions.

Task names are here so that the adapters can name them without importing Django.
"""

MEEPO_NOOP = "bench_noop"
MEEPO_LATENCY = "bench_latency"
