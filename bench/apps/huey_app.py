"""Huey instance and task of the benchmark: ``huey_consumer bench.apps.huey_app.huey``."""

from __future__ import annotations

from huey import RedisHuey

from bench.apps import broker_url, prefix
from bench.recorder import record

huey = RedisHuey(prefix(), url=broker_url())


@huey.task()
def noop(number: int) -> None:
    record(number)
