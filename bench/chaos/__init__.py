"""A history-checked fault suite for django-meepo: ``python -m bench.chaos`` (docs/reliability.md).

One concern per module: ``cli`` (arguments), ``runner`` (the schedule), ``procs`` (the processes it starts and
stops), ``faults`` (the registry of faults), ``history`` (the database and what is read back), ``checker`` (pure
checks over the history), ``child`` (the worker launcher: a skewed clock, the Redis dispatcher alone).
"""
