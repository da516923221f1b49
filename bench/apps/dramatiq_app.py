"""Dramatiq broker and actor of the benchmark: ``dramatiq bench.apps.dramatiq_app``."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.apps import broker_url, prefix
from bench.recorder import record

broker = RedisBroker(url=broker_url(), namespace=prefix())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench")
def noop(number: int) -> None:
    record(number)
