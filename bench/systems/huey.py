"""Huey on Redis: one consumer with 4 worker threads. No bulk push."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..apps import ENV_BROKER, ENV_PREFIX
from ..services import delete_matching
from .base import System, Variant, executable


class Huey(System):
    name = "huey"
    label = "Huey"
    modules = ("huey",)
    distributions = ("huey",)
    variants = (Variant("4t", "4 threads", 1, 4),)

    def env(self) -> dict[str, str]:
        return {ENV_BROKER: self.broker_url, ENV_PREFIX: self.prefix}

    def prepare(self) -> None:
        os.environ.update(self.env())
        from ..apps import huey_app

        self.noop: Any = huey_app.noop

    def push_one(self, numbers: Sequence[int]) -> None:
        for n in numbers:
            self.noop(n)

    def worker_commands(self, variant: Variant) -> list[tuple[str, list[str]]]:
        return [("huey", [executable("huey_consumer"), "bench.apps.huey_app.huey", "--workers", str(variant.slots),
                          "--worker-type", "thread", "--quiet"])]

    def reset(self) -> None:
        delete_matching(self.broker_url, f"huey.*{self.prefix}*")
