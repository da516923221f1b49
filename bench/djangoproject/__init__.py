"""The Django side of the benchmark: settings for django-meepo and for django-tasks-db, and their job functions.

Task names are here so that the adapters can name them without importing Django.
"""

MEEPO_NOOP = "bench_noop"
MEEPO_LATENCY = "bench_latency"
# The same no-op job under a global concurrency limit and under a rate limit, neither of them binding: the flow
# workload measures what counting them costs (django_meepo/limits.py).
MEEPO_CONCURRENCY = "bench_concurrency"
MEEPO_RATE = "bench_rate"
