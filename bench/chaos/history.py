"""The chaos run's database and what is read back from it for the checker.

``create_database``/``drop_database`` work on the server (the tool's own database, ``meepo_chaos_<seed>_<mode>``);
``read`` turns the final rows into ``checker`` rows through the Django ORM (after ``django.setup()``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlparse

from .checker import AttemptRow, FaultEvent, History, JobRow, RunRow


def mysql_params(url: str) -> dict[str, Any]:
    """mysqlclient arguments for ``mysql://user:password@host:port[/…]`` (the database part is ignored)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mysql", "mariadb"):
        raise ValueError(f"the chaos tool runs on MariaDB/MySQL: give a mysql:// URL, not {url!r}")
    return {"host": parsed.hostname or "127.0.0.1", "port": parsed.port or 3306,
            "user": unquote(parsed.username or "root"), "password": unquote(parsed.password or ""),
            "charset": "utf8mb4"}


def database_url(url: str, name: str) -> str:
    parsed = urlparse(url)
    return parsed._replace(path=f"/{name}").geturl()


def _server(url: str, sql: str) -> None:
    import MySQLdb

    conn = MySQLdb.connect(**mysql_params(url))
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


def _checked_name(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r}: letters, digits and underscores only")
    return name


def create_database(url: str, name: str) -> None:
    """A fresh database: dropped first if an earlier run of the same seed left it."""
    drop_database(url, name)
    _server(url, f"CREATE DATABASE `{_checked_name(name)}` CHARACTER SET utf8mb4")


def drop_database(url: str, name: str) -> None:
    _server(url, f"DROP DATABASE IF EXISTS `{_checked_name(name)}`")


def utc(value: datetime | None) -> datetime | None:
    """Naive UTC (how the checker compares times) from what Django returns (aware with USE_TZ)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def read(*, committed: Iterable[int], rolled_back: Iterable[int], operator_committed: Iterable[int],
         faults: list[FaultEvent]) -> History:
    """Every recorded run, the final row of every pushed job, their attempts and the database's time now."""
    from django_meepo.clock import db_now
    from django_meepo.models import Attempt, Job
    from testproject.models import ChaosRun

    committed, rolled_back = frozenset(committed), frozenset(rolled_back)
    ids = sorted(committed | rolled_back)
    runs = [RunRow(r.job_id, r.cid, r.attempt, r.pid, utc(r.started), utc(r.ended), r.run_id)  # type: ignore[arg-type]
            for r in ChaosRun.objects.order_by("id")]
    jobs: list[JobRow] = []
    attempts: list[AttemptRow] = []
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        jobs += [JobRow(j["id"], j["status"], j["cid"], utc(j["lease_until"]))
                 for j in Job.objects.filter(id__in=chunk).values("id", "status", "cid", "lease_until")]
        attempts += [AttemptRow(a["job_id"], a["number"], a["outcome"])
                     for a in Attempt.objects.filter(job_id__in=chunk).values("job_id", "number", "outcome")]
    return History(runs=runs, jobs=jobs, attempts=attempts, faults=faults, committed=committed,
                   rolled_back=rolled_back, operator_committed=frozenset(operator_committed),
                   now=utc(db_now("default")))


def fault_lines(faults: list[FaultEvent], started: datetime) -> list[str]:
    """One line per fault fired: its offset from the start, its length, its name, what it hit."""
    return [f"  t+{(f.started - started).total_seconds():6.1f} s  ({(f.ended - f.started).total_seconds():4.1f} s)"
            f"  {f.name:<26} {f.detail}" for f in faults]
