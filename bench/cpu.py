"""CPU time of process trees, from /proc (no psutil): what bounds a throughput figure on a small machine."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # gone meanwhile
    return text[text.rindex(")") + 2:].split()  # the fields after "(comm)", from field 3 (state) on


def tree(pid: int) -> set[int]:
    """``pid`` and its live descendants (a worker's forked processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(children.get(current, []))
    return found


def seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds these processes used so far (their reaped children included). A process that
    exited meanwhile counts nothing, so a delta over a window is a lower bound if one exits inside it."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime (fields 14-17)
    return total / TICKS


class Meter:
    """CPU seconds of named groups of process trees between :meth:`start` and :meth:`stop`."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.before: dict[str, float] = {}
        self.pids: dict[str, set[int]] = {}

    def _now(self) -> dict[str, float]:
        for name, roots in self.groups.items():
            self.pids.setdefault(name, set()).update(p for root in roots for p in tree(root))
        return {name: seconds(self.pids[name]) for name in self.groups}

    def start(self) -> None:
        self.before = self._now()

    def stop(self) -> dict[str, float]:
        after = self._now()
        return {name: after[name] - self.before.get(name, 0.0) for name in self.groups}
