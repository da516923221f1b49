"""A MariaDB server owned by one test: its own data directory (``mariadb-install-db``) and a free port, so the
test may kill it and start it again while workers use it. Stopped by PID; the directory is removed after."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import MySQLdb

from .services import free_port, wait_until


@dataclass
class PrivateMariaDB:
    port: int = field(default_factory=free_port)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="meepo-mariadb-")))
    process: subprocess.Popen | None = None
    host: str = "127.0.0.1"  # the address it listens on (a test's own bridge, for hosts in network namespaces)

    @property
    def datadir(self) -> Path:
        return self.dir / "data"

    def url(self, database: str) -> str:
        return f"mysql://root@{self.host}:{self.port}/{database}"

    def install(self) -> PrivateMariaDB:
        binary = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
        subprocess.run([binary, "--no-defaults", f"--datadir={self.datadir}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        return self

    def start(self) -> PrivateMariaDB:
        binary = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - the server's log, closed with the process
        self.process = subprocess.Popen(
            [binary, "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}", f"--bind-address={self.host}",
             f"--socket={self.dir / 'sock'}", "--user=root", "--innodb-buffer-pool-size=64M", "--max-connections=300",
             f"--pid-file={self.dir / 'pid'}", "--character-set-server=utf8mb4"],
            stdout=log, stderr=log)
        log.close()
        wait_until(self._ping, timeout=60, interval=0.2, message=f"mariadbd on port {self.port}")
        return self

    def _ping(self) -> bool:
        try:
            MySQLdb.connect(unix_socket=str(self.dir / "sock"), user="root", connect_timeout=2).close()
            return True
        except MySQLdb.Error:
            return False

    def connect(self, database: str | None = None) -> MySQLdb.Connection:
        kwargs = {"db": database} if database else {}
        conn = MySQLdb.connect(host=self.host, port=self.port, user="root", connect_timeout=5, **kwargs)
        conn.autocommit(True)
        return conn

    def allow_root_from_anywhere(self) -> None:
        """root without a password from any address (the test's own server, on the test's own bridge)."""
        conn = MySQLdb.connect(unix_socket=str(self.dir / "sock"), user="root", connect_timeout=5)
        cursor = conn.cursor()
        cursor.execute("CREATE USER IF NOT EXISTS 'root'@'%'")
        cursor.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION")

    def create_database(self, name: str) -> None:
        self.connect().cursor().execute(f"CREATE DATABASE {name}")

    def query(self, database: str, sql: str) -> list[tuple]:
        conn = self.connect(database)
        try:
            cursor = conn.cursor()
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            conn.close()

    @staticmethod
    def epoch(column: str) -> str:
        return f"UNIX_TIMESTAMP({column})"

    def crash(self) -> None:
        self.kill()

    def kill(self) -> None:
        """SIGKILL: a crash. InnoDB recovers what was committed when it starts again."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
