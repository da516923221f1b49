"""Celery 5 on Redis: prefork and threads pools of concurrency 4; bulk pushes as a ``group``."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from ..apps import ENV_BROKER, ENV_PREFIX
from ..services import delete_matching
from .base import System, Variant


class Celery(System):
    name = "celery"
    label = "Celery"
    modules = ("celery",)
    distributions = ("celery", "kombu")
    variants = (Variant("prefork", "prefork, concurrency 4", 1, 4), Variant("threads", "threads, concurrency 4", 1, 4))
    bulk = "group"

    def env(self) -> dict[str, str]:
        return {ENV_BROKER: self.broker_url, ENV_PREFIX: self.prefix}

    def prepare(self) -> None:
        os.environ.update(self.env())
        from ..apps import celery_app

        self.noop: Any = celery_app.noop

    def push_one(self, numbers: Sequence[int]) -> None:
        for n in numbers:
            self.noop.delay(n)

    def push_bulk(self, numbers: Sequence[int]) -> None:
        from celery import group

        for chunk in self.chunks(numbers):
            group(self.noop.s(n) for n in chunk).apply_async()

    def worker_commands(self, variant: Variant) -> list[tuple[str, list[str]]]:
        return [(f"celery-{variant.key}", [
            sys.executable, "-m", "celery", "-A", "bench.apps.celery_app", "worker", "--pool", variant.key,
            "--concurrency", str(variant.slots), "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", "WARNING", "--hostname", f"{self.prefix}-{variant.key}@%h"])]

    def reset(self) -> None:
        delete_matching(self.broker_url, f"{self.prefix}:*")
