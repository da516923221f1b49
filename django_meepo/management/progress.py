"""A progress bar for management commands, written to stderr (so stdout stays parseable)."""

from __future__ import annotations

import time

from django.core.management.base import OutputWrapper

WIDTH = 30


class ProgressBar:
    """``label [#########.....] 300/1000 30%``; redrawn in place on a terminal, a line per update elsewhere
    (at most one a second, and the last one always)."""

    def __init__(self, label: str, total: int, stream: OutputWrapper, *, enabled: bool = True) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.enabled = enabled and total > 0
        self.tty = stream.isatty()
        self._last_line = float("-inf")
        self.done = 0

    def update(self, done: int) -> None:
        self.done = done
        if not self.enabled:
            return
        if not self.tty and time.monotonic() - self._last_line < 1.0 and done < self.total:
            return
        self._last_line = time.monotonic()
        self.stream.write(("\r" if self.tty else "") + self.render() + ("" if self.tty else "\n"), ending="")
        self.stream.flush()

    def render(self) -> str:
        part = min(1.0, self.done / self.total) if self.total else 1.0
        filled = int(part * WIDTH)
        return f"{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {self.done}/{self.total} {part:.0%}"

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n", ending="")
            self.stream.flush()
