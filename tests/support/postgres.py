"""A PostgreSQL server owned by one test: its own data directory (``initdb``) and a free port, so the test may
crash it (``pg_ctl stop -m immediate``: no checkpoint, recovery at the next start) and start it again. Run as
the ``postgres`` user when the test runs as root (PostgreSQL refuses root); the directory is removed after."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from .services import free_port, wait_until


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not versions:
        raise FileNotFoundError(f"{name} (PostgreSQL's server binaries) is not installed")
    return str(versions[-1])


@dataclass
class PrivatePostgres:
    port: int = field(default_factory=free_port)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="meepo-postgres-")))
    running: bool = False

    @property
    def datadir(self) -> Path:
        return self.dir / "data"

    def _as_owner(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def install(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        subprocess.run(self._as_owner(_binary("initdb"), "-D", str(self.datadir), "-A", "trust", "-U", "postgres"),
                       check=True, capture_output=True, timeout=120)
        return self

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300"
        subprocess.run(self._as_owner(_binary("pg_ctl"), "-D", str(self.datadir), "-l", str(self.dir / "server.log"),
                                      "-o", options, "-w", "start"), check=True, capture_output=True, timeout=120)
        self.running = True
        wait_until(self._ping, timeout=60, interval=0.2, message=f"PostgreSQL on port {self.port}")
        return self

    def _ping(self) -> bool:
        try:
            psycopg.connect(self.url("postgres"), connect_timeout=2).close()
            return True
        except psycopg.Error:
            return False

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")

    def query(self, database: str, sql: str) -> list[tuple]:
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            return list(conn.execute(sql).fetchall())

    @staticmethod
    def epoch(column: str) -> str:
        return f"EXTRACT(EPOCH FROM {column})"

    def crash(self) -> None:
        """An immediate stop: every backend is killed, nothing is checkpointed (a crash, recovered at start)."""
        if self.running:
            subprocess.run(self._as_owner(_binary("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"),
                           check=True, capture_output=True, timeout=120)
            self.running = False

    def cleanup(self) -> None:
        self.crash()
        shutil.rmtree(self.dir, ignore_errors=True)
