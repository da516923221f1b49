"""Worker subprocesses (``manage.py meepo_consume``) pointed at the test database and this test's Redis keys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [str(ROOT / "manage.py")]
# manage.py with every worker on the Redis dispatcher alone (no failover to the table): see redis_only.py.
REDIS_ONLY = ["-m", "tests.support.redis_only"]


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child process of the testproject: the test database, this test's key prefix."""
    env = dict(os.environ)
    env["MEEPO_DB_NAME"] = connection.settings_dict["NAME"]
    env["MEEPO_KEY_PREFIX"] = settings.MEEPO["KEY_PREFIX"]
    env["REDIS_URL"] = settings.CACHES["meepo"]["LOCATION"]
    env["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    env.setdefault("MEEPO_LOG_LEVEL", "INFO")
    env.update(extra)
    return env


@dataclass
class WorkerProcess:
    args: list[str]
    env: dict[str, str]
    launcher: list[str] = field(default_factory=lambda: list(MANAGE))
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="meepo-worker-", suffix=".log")[1]))
    process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen([sys.executable, *self.launcher, *self.args], cwd=ROOT,
                                            env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, sig: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def wait(self, timeout: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class WorkerPool:
    def __init__(self) -> None:
        self.started: list[WorkerProcess] = []

    def start(self, *args: str, launcher: list[str] | None = None, **env: str) -> WorkerProcess:
        worker = WorkerProcess(list(args), subprocess_env(**env), launcher or list(MANAGE)).start()
        self.started.append(worker)
        return worker

    def consume(self, *tasks: str, extra: tuple[str, ...] = (), redis_only: bool = False, **env: str) -> WorkerProcess:
        """``meepo_consume`` on ``tasks``; ``redis_only``: on the Redis dispatcher alone, without failover."""
        return self.start("meepo_consume", *tasks, *extra, launcher=REDIS_ONLY if redis_only else None, **env)

    def stop_all(self) -> None:
        for worker in self.started:
            worker.kill()
            worker.log.unlink(missing_ok=True)
