"""What the figures were measured on: cores, CPU model, load average, and the versions of everything."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from .config import ROOT, Services
from .services import mariadb_version, redis_version
from .systems import SYSTEMS

log = logging.getLogger(__name__)

BASE_DISTRIBUTIONS = ("Django", "django-redis", "mysqlclient", "redis")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load() -> tuple[float, float, float]:
    return os.getloadavg()


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' + local changes' if dirty else ''}"


def _distribution(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions(services: Services) -> dict[str, str]:
    found = {"Python": platform.python_version()}
    for name in BASE_DISTRIBUTIONS:
        version = _distribution(name)
        if version:
            found[name] = version
    for label, probe in (("MariaDB", lambda: mariadb_version(services.database_url)),
                         ("Redis", lambda: redis_version(services.redis_url))):
        try:
            found[label] = probe()
        except Exception as exc:
            log.warning("could not ask %s for its version: %s", label, exc)
            found[label] = "unreachable"
    for cls in SYSTEMS.values():
        found.update(cls.versions())
    if "django-meepo" in found:
        found["django-meepo"] += f" (git {git_commit()})"
    return found


def describe(services: Services) -> dict[str, Any]:
    return {"cores": os.cpu_count(), "cpu": cpu_model(), "platform": platform.platform(),
            "versions": versions(services)}
