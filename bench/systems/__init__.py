"""The systems under benchmark, django-meepo first (the table's ratios are against it)."""

from __future__ import annotations

from .base import System, Variant
from .celery import Celery
from .dramatiq import Dramatiq
from .dtdb import DjangoTasksDB
from .huey import Huey
from .meepo import Meepo
from .rq import RQ

SYSTEMS: dict[str, type[System]] = {cls.name: cls for cls in (Meepo, Huey, Dramatiq, Celery, RQ, DjangoTasksDB)}

__all__ = ["SYSTEMS", "System", "Variant"]
