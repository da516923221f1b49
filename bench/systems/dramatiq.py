"""Dramatiq on Redis: 2 processes × 2 threads. No bulk push."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from ..apps import ENV_BROKER, ENV_PREFIX
from ..services import delete_matching
from .base import System, Variant


class Dramatiq(System):
    name = "dramatiq"
    label = "Dramatiq"
    modules = ("dramatiq",)
    distributions = ("dramatiq",)
    variants = (Variant("2x2", "2 processes × 2 threads", 2, 2),)

    def env(self) -> dict[str, str]:
        return {ENV_BROKER: self.broker_url, ENV_PREFIX: self.prefix}

    def prepare(self) -> None:
        os.environ.update(self.env())
        from ..apps import dramatiq_app

        self.noop: Any = dramatiq_app.noop

    def push_one(self, numbers: Sequence[int]) -> None:
        for n in numbers:
            self.noop.send(n)

    def worker_commands(self, variant: Variant) -> list[tuple[str, list[str]]]:
        return [("dramatiq", [sys.executable, "-m", "dramatiq", "bench.apps.dramatiq_app",
                              "--processes", str(variant.processes), "--threads", str(variant.slots)])]

    def reset(self) -> None:
        delete_matching(self.broker_url, f"{self.prefix}:*")
