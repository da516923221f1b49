"""The processes a chaos run starts — its redis-server, ``meepo_consume`` and ``meepo_sweep`` — and their end.

Everything is started in a session of its own and remembered by PID in :class:`Fleet`; :meth:`Fleet.stop_all`
ends exactly those processes (SIGTERM, then SIGKILL to each one's own process group), and the CLI calls it in a
``finally`` and from its SIGINT/SIGTERM handler. Nothing is ever found or killed by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
TASKS = ("chaos", "chaos_poison")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(sig)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then after ``grace`` SIGKILL to its own process group (only what it started)."""
        if self.alive():
            self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)


@dataclass
class Redis:
    """The run's own redis-server on a free port; it can be killed, stopped and started again (always empty)."""

    port: int = field(default_factory=free_port)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="chaos-redis-")))
    proc: Proc | None = None
    closed: bool = False  # after cleanup: a fault thread still running must not start it again
    extra_args: tuple[str, ...] = ()  # e.g. --replicaof (bench/chaos/topology.py)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.url}

    def client(self, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout)

    def start(self) -> None:
        if self.closed:
            raise RuntimeError("the run is over: redis-server is not started again")
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        log = self.dir / "redis.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.dir), "--maxmemory-policy", "noeviction", "--enable-debug-command", "yes",
                 *self.extra_args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.proc = Proc("redis-server", popen, log)
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(redis.RedisError):
                if self.client().ping():
                    return
            if time.monotonic() > deadline or not self.proc.alive():
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{self.proc.tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """kill -9: it starts again empty (no persistence)."""
        if self.proc is not None:
            self.proc.signal(signal.SIGKILL)
            self.proc.popen.wait(timeout=10)
            self.proc = None

    def cleanup(self) -> None:
        self.closed = True
        if self.proc is not None:
            self.proc.stop(grace=2)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Fleet:
    """The worker processes of a run: consumers and sweepers, replaced when a fault ends one."""

    env: dict[str, str]
    redis_only: bool
    logdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="chaos-logs-")))
    consumers: list[Proc] = field(default_factory=list)
    sweepers: list[Proc] = field(default_factory=list)
    retired: list[Proc] = field(default_factory=list)  # stopped by a fault: waited for, kept for their logs
    started: int = 0
    closed: bool = False  # after stop_all: nothing new is started

    def _start(self, name: str, args: list[str], skew: float = 0.0) -> Proc:
        if self.closed:
            raise RuntimeError(f"the run is over: {name} is not started")
        self.started += 1
        log = self.logdir / f"{self.started:03d}-{name}.log"
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT), "MEEPO_CHAOS_SKEW": str(skew),
               "MEEPO_CHAOS_REDIS_ONLY": "1" if self.redis_only and name.startswith("consume") else ""}
        with open(log, "ab") as out:
            popen = subprocess.Popen([sys.executable, "-m", "bench.chaos.child", *args], cwd=ROOT, env=env,
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        return Proc(name, popen, log)

    def start_consumer(self, skew: float = 0.0) -> Proc:
        proc = self._start("consume" + ("-skewed" if skew else ""),
                           ["meepo_consume", *TASKS, "--parallel", "4", "--grace", "2"], skew)
        self.consumers.append(proc)
        return proc

    def start_sweeper(self) -> Proc:
        proc = self._start("sweep", ["meepo_sweep"])
        self.sweepers.append(proc)
        return proc

    def retire(self, proc: Proc) -> None:
        """Forget a consumer a fault ended (or is ending); the caller starts its replacement."""
        if proc in self.consumers:
            self.consumers.remove(proc)
        self.retired.append(proc)

    def replace_dead(self) -> list[Proc]:
        """Consumers and sweepers that exited on their own (no fault asked them to): retired and replaced."""
        dead = [p for p in [*self.consumers, *self.sweepers] if not p.alive()]
        for proc in dead:
            if proc in self.consumers:
                self.retire(proc)
                self.start_consumer()
            else:
                self.sweepers.remove(proc)
                self.retired.append(proc)
                self.start_sweeper()
        return dead

    def all(self) -> list[Proc]:
        return [*self.consumers, *self.sweepers, *self.retired]

    def stop_all(self, grace: float = 10.0) -> None:
        self.closed = True
        procs = [p for p in self.all() if p.alive()]
        for proc in procs:
            proc.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.all():
            proc.stop(grace=0)

    def cleanup(self, keep_logs: bool) -> None:
        if not keep_logs:
            shutil.rmtree(self.logdir, ignore_errors=True)
