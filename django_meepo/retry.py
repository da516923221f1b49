"""Retry policy: exponential backoff between a job's failures, and whether a failure is its last."""

from __future__ import annotations

import random

from .options import TaskOptions


def is_final_failure(failed_times_after: int, options: TaskOptions) -> bool:
    """As in Meepo: the n-th failure fails the job (n = max_failed_times; 0 = never)."""
    return options.max_failed_times > 0 and failed_times_after >= options.max_failed_times


def backoff_seconds(failed_times_after: int, options: TaskOptions, rng: random.Random | None = None) -> float:
    """Delay before the next run after the ``failed_times_after``-th failure: base * 2**(n-1), capped.

    With jitter the delay is drawn uniformly from [delay/2, delay] ("equal jitter"), so that jobs that failed
    together do not all come back in the same second.
    """
    if options.retry_backoff <= 0 or failed_times_after <= 0:
        return 0.0
    exponent = min(failed_times_after - 1, 32)
    delay = min(options.retry_backoff * (2 ** exponent), options.retry_backoff_max)
    if options.retry_jitter:
        delay = (rng or random).uniform(delay / 2, delay)
    return delay
