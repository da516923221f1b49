"""How the admin shows a job's bytes and history: payloads, errors, attempts. Pure functions, no requests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..models import AttemptInfo

# Payloads above this many bytes are shown truncated (and never parsed as JSON).
PAYLOAD_SHOWN_BYTES = 32 * 1024
# Binary payloads are shown as a hex dump of at most this many bytes.
HEX_SHOWN_BYTES = 4 * 1024
HEX_ROW = 16


@dataclass(frozen=True, slots=True)
class RenderedPayload:
    kind: str  # "empty" | "json" | "text" | "binary"
    text: str
    size: int
    shown: int  # bytes shown (all of them unless truncated)

    @property
    def truncated(self) -> bool:
        return self.shown < self.size

    @property
    def summary(self) -> str:
        if self.kind == "empty":
            return "empty"
        shown = f", truncated: first {human_size(self.shown)} shown" if self.truncated else ""
        return f"{self.kind}, {human_size(self.size)}{shown}"


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} byte{'s' if n != 1 else ''}"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def hexdump(data: bytes) -> str:
    """``offset  hex bytes  |ascii|`` lines, 16 bytes each."""
    lines = []
    for offset in range(0, len(data), HEX_ROW):
        chunk = data[offset:offset + HEX_ROW]
        hex_part = " ".join(f"{b:02x}" for b in chunk)
        ascii_part = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hex_part:<{HEX_ROW * 3 - 1}}  |{ascii_part}|")
    return "\n".join(lines)


def render_payload(data: bytes, limit: int = PAYLOAD_SHOWN_BYTES) -> RenderedPayload:
    """Pretty JSON when the whole payload is JSON, UTF-8 text when it decodes, a hex dump otherwise."""
    size = len(data)
    if not size:
        return RenderedPayload("empty", "", 0, 0)
    truncated = size > limit
    head = data[:limit]
    if not truncated:
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            pass
        else:
            return RenderedPayload("json", json.dumps(value, indent=2, ensure_ascii=False), size, size)
    try:
        return RenderedPayload("text", head.decode("utf-8"), size, len(head))
    except UnicodeDecodeError as exc:
        # A multi-byte character cut in two by the truncation is no reason to show hex.
        if truncated and exc.start >= len(head) - 3:
            return RenderedPayload("text", head[:exc.start].decode("utf-8"), size, exc.start)
    head = data[:HEX_SHOWN_BYTES]
    return RenderedPayload("binary", hexdump(head), size, len(head))


def payload_html(data: bytes) -> SafeString:
    rendered = render_payload(data)
    if rendered.kind == "empty":
        return SafeString('<span class="meepo-quiet">(empty)</span>')
    return format_html('<div class="meepo-quiet">{}</div><pre class="meepo-pre meepo-{}">{}</pre>',
                       rendered.summary, rendered.kind, rendered.text)


def error_html(error: str) -> SafeString:
    if not error:
        return SafeString('<span class="meepo-quiet">(none)</span>')
    return format_html('<pre class="meepo-pre meepo-error">{}</pre>', error)


def moment(value: datetime | None) -> str:
    """A compact local time for list columns: ``2026-11-27 05:54:12``."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def moment_html(value: datetime | None) -> SafeString:
    """:func:`moment` for a narrow list column: the date and the time (to the second) wrap onto two lines when
    the column is narrow, never inside either."""
    if value is None:
        return SafeString("-")
    local = timezone.localtime(value)
    return format_html('<span class="meepo-moment">{}</span> <span class="meepo-moment">{}</span>',
                       local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S"))


def duration(started: datetime | None, finished: datetime | None) -> str:
    if started is None or finished is None:
        return ""
    seconds = (finished - started).total_seconds()
    return f"{seconds:.3f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def progress_html(done: int | None, total: int | None, note: str | None, *, wide: bool = False) -> SafeString:
    """A job's last progress report as a bar with ``37% · 370/1000`` (and the note: beside it on the detail
    page, as the bar's tooltip in the list); a dash when the job never reported any."""
    if done is None or total is None:
        return SafeString('<span class="meepo-quiet">-</span>')
    percent = min(100.0, 100.0 * done / total) if total else 0.0
    label = f"{percent:.0f}% · {done:,}/{total:,}"
    note = note or ""
    extra = format_html(' <span class="meepo-progress-note">{}</span>', note) if wide and note else ""
    return format_html(
        '<span class="meepo-progress{}" title="{}"><span class="meepo-progress-track">'
        '<span class="meepo-progress-fill" style="width: {}%"></span></span>'
        '<span class="meepo-progress-label">{}</span>{}</span>',
        " meepo-progress-wide" if wide else "", note or label, f"{percent:.1f}", label, extra)


def error_summary(error: str, limit: int = 120) -> str:
    """The line that says what went wrong: a traceback's exception line (its last line, after any chained
    tracebacks), otherwise the error's first line; cut to ``limit`` characters."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1] if lines[0].startswith("Traceback (most recent call last)") else lines[0]
    return line if len(line) <= limit else line[:limit - 1] + "…"


def attempts_html(history: list[AttemptInfo]) -> SafeString:
    """Every attempt: number, worker, start, end (to the second), duration, outcome, and its error: the
    exception line, unfolding to the whole traceback."""
    rows = [{"a": a, "duration": duration(a.started_at, a.finished_at), "started": moment(a.started_at),
             "finished": moment(a.finished_at), "summary": error_summary(a.error or "")} for a in history]
    return SafeString(render_to_string("admin/django_meepo/job/attempts.html", {"rows": rows}))


def task_html(described: dict[str, Any] | None) -> SafeString:
    """A Django Tasks job (``django_meepo.tasks.describe``): the task's path, arguments and return value."""
    if described is None:
        return format_html("{}", "—")
    rows = [("task", described["task"]), ("status", described["status"]), ("queue", described["queue"]),
            ("args", _json(described["args"])), ("kwargs", _json(described["kwargs"])),
            ("return value", _json(described["return_value"]))]
    body = format_html_join("", "<tr><th>{}</th><td><pre>{}</pre></td></tr>", rows)
    return format_html('<table class="meepo-task">{}</table>', body)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)
