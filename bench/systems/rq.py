"""RQ on Redis: 2 SimpleWorkers (jobs run in the worker) or 2 forking Workers (a fork per job);
bulk pushes through ``Queue.enqueue_many``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..recorder import ENV_SYNC
from ..services import delete_matching
from .base import System, Variant, executable

WORKER_CLASSES = {"simple": "rq.worker.SimpleWorker", "fork": "rq.worker.Worker"}


class RQ(System):
    name = "rq"
    label = "RQ"
    modules = ("rq",)
    distributions = ("rq",)
    variants = (Variant("simple", "2 SimpleWorkers", 2, 1), Variant("fork", "2 forking Workers", 2, 1))
    bulk = "enqueue_many"

    def prepare(self) -> None:
        from redis import Redis
        from rq import Queue

        from ..apps.rq_jobs import noop

        self.queue: Any = Queue(self.prefix, connection=Redis.from_url(self.broker_url))
        self.noop = noop

    def push_one(self, numbers: Sequence[int]) -> None:
        for n in numbers:
            self.queue.enqueue(self.noop, n)

    def push_bulk(self, numbers: Sequence[int]) -> None:
        from rq import Queue

        for chunk in self.chunks(numbers):
            self.queue.enqueue_many([Queue.prepare_data(self.noop, (n,)) for n in chunk])

    def worker_commands(self, variant: Variant) -> list[tuple[str, list[str]]]:
        return [(f"rq-{variant.key}-{i}", [
            executable("rq"), "worker", "--url", self.broker_url, "--worker-class", WORKER_CLASSES[variant.key],
            "--name", f"{self.prefix}-{variant.key}-{i}", "--disable-job-desc-logging", "--quiet", self.prefix])
            for i in range(variant.processes)]

    def record_env(self, variant: Variant) -> dict[str, str]:
        # A forking Worker runs each job in a child that leaves with os._exit: record synchronously.
        return {ENV_SYNC: "1"} if variant.key == "fork" else {}

    def reset(self) -> None:
        delete_matching(self.broker_url, "rq:*")  # RQ's own Redis database: its global keys too
