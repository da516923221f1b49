"""Worker processes of the system under test: started in a session of their own, stopped by their own ids."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import ROOT

log = logging.getLogger(__name__)


class WorkerDied(RuntimeError):
    """Every worker process of a run exited before the run was over."""


@dataclass(slots=True)
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM to the process (its own shutdown reaches its children); SIGKILL to its group after ``grace``."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %g s after SIGTERM; killing it", self.name, grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # its own session: only what it started
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)


def start(name: str, command: Sequence[str], env: Mapping[str, str]) -> Proc:
    fd, path = tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")
    with os.fdopen(fd, "wb") as out:
        popen = subprocess.Popen(list(command), cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
    log.debug("started %s (pid %d): %s", name, popen.pid, " ".join(command))
    return Proc(name, popen, Path(path))


@contextlib.contextmanager
def running(commands: Sequence[tuple[str, Sequence[str]]], env: Mapping[str, str]) -> Iterator[list[Proc]]:
    """Start these workers; stop them all (and delete their logs) when the block ends."""
    procs: list[Proc] = []
    try:
        for name, command in commands:
            procs.append(start(name, command, env))
        yield procs
    finally:
        for proc in procs:
            proc.stop()
        for proc in procs:
            proc.log.unlink(missing_ok=True)


def check_alive(procs: Sequence[Proc]) -> None:
    """Raise :class:`WorkerDied` (with the end of a log) when every worker has exited."""
    if procs and all(p.popen.poll() is not None for p in procs):
        first = procs[0]
        raise WorkerDied(f"{first.name} exited with code {first.popen.returncode}:\n{first.tail()}")


def rss_mb(pid: int) -> float:
    """Resident set size of one process, in MB (10^6 bytes), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmRSS for process {pid}")
