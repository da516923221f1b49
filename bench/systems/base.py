"""What every system under benchmark provides: pushing, its worker processes, and a clean slate between runs.

An adapter runs inside a harness child process (one per system and workload). It is constructed with the
broker to use (its Redis database on the shared server, or the flush workload's private redis-server) and a
prefix of its own; :meth:`System.prepare` then configures the system (environment, imports, Django, database).
"""

from __future__ import annotations

import abc
import importlib.metadata
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..config import Config


@dataclass(frozen=True, slots=True)
class Variant:
    """How the 4 concurrent slots are laid out: ``processes`` × ``slots`` each."""

    key: str
    label: str
    processes: int
    slots: int


class System(abc.ABC):
    name: ClassVar[str]
    label: ClassVar[str]
    modules: ClassVar[tuple[str, ...]]  # import names it needs; missing → "not installed"
    distributions: ClassVar[tuple[str, ...]]  # whose versions the report prints
    variants: ClassVar[tuple[Variant, ...]]
    bulk: ClassVar[str | None] = None  # the bulk push API, when the system has one
    uses_redis: ClassVar[bool] = True

    def __init__(self, config: Config, *, broker_url: str, prefix: str) -> None:
        self.config = config
        self.broker_url = broker_url
        self.prefix = prefix

    # -- what the runner asks before starting a child
    @classmethod
    def missing(cls) -> list[str]:
        return [m for m in cls.modules if importlib.util.find_spec(m) is None]

    @classmethod
    def versions(cls) -> dict[str, str]:
        found = {}
        for dist in cls.distributions:
            try:
                found[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
        return found

    # -- inside the child
    def env(self) -> dict[str, str]:
        """Environment of the system's processes (the harness child sets it on itself in :meth:`prepare`)."""
        return {}

    @abc.abstractmethod
    def prepare(self) -> None:
        """Configure the system in this process; create what it needs (databases, tables)."""

    @abc.abstractmethod
    def push_one(self, numbers: Sequence[int]) -> None:
        """Push one no-op job per number, one call each."""

    def push_bulk(self, numbers: Sequence[int]) -> None:
        """Push one no-op job per number through the bulk API, ``bulk_size`` jobs per call."""
        raise NotImplementedError(f"{self.label} has no bulk push")

    @abc.abstractmethod
    def worker_commands(self, variant: Variant) -> list[tuple[str, list[str]]]:
        """(name, argv) of each worker process that together give ``variant``'s slots to the no-op jobs."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Remove every job and key this system holds under its prefix (no worker is running)."""

    def record_env(self, variant: Variant) -> dict[str, str]:
        """Extra environment for the recorder in the workers of ``variant``."""
        return {}

    def chunks(self, numbers: Sequence[int]) -> Iterator[Sequence[int]]:
        size = self.config.sizes.bulk_size
        for start in range(0, len(numbers), size):
            yield numbers[start:start + size]


def executable(name: str) -> str:
    """A console script installed beside this interpreter (the benchmark's virtualenv)."""
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        raise FileNotFoundError(f"{name} is not installed beside {sys.executable}")
    return str(path)
