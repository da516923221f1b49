"""Line charts as inline SVG, built on the server (no JavaScript, no CDN): the admin dashboard's charts.

:func:`line_chart` takes one or more :class:`Series` of per-minute values over a window and returns the SVG
markup: a polyline per unbroken run of values (a minute without a value — no sweeper sampled it — breaks the
line), axes with the window's start, middle and end times and the y range, a legend and an accessible
``<title>``. Without any value it draws the frame and says "no data yet". Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 560, 180
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 24, 28  # margins around the plot area
COLOURS = ("#417690", "#ba2121", "#70bf2b", "#d9822b")


@dataclass(frozen=True, slots=True)
class Series:
    """A line: its name (legend) and its value per minute (minutes missing from ``values`` are gaps)."""

    name: str
    values: Mapping[datetime, float | None]


def _nice_top(peak: float) -> float:
    """A round number at or above ``peak`` for the y axis (1, 2 or 5 times a power of ten)."""
    if peak <= 0:
        return 1.0
    scale = 10 ** len(str(int(peak))) / 10 if peak >= 1 else 1.0
    for step in (1, 2, 5, 10):
        if peak <= step * scale:
            return float(step * scale)
    return float(10 * scale)  # pragma: no cover - the loop always returns


def _label(value: float, unit: str) -> str:
    text = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
    return f"{text}{unit}"


def runs(values: Mapping[datetime, float | None], start: datetime, end: datetime) -> list[list[tuple[int, float]]]:
    """The unbroken runs of (minute index, value) from ``start`` (inclusive) to ``end`` (exclusive)."""
    found: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    minutes = int((end - start) / timedelta(minutes=1))
    for i in range(minutes):
        value = values.get(start + timedelta(minutes=i))
        if value is None:
            if current:
                found.append(current)
            current = []
        else:
            current.append((i, float(value)))
    if current:
        found.append(current)
    return found


def line_chart(series: Sequence[Series], *, start: datetime, end: datetime, title: str, unit: str = "",
               chart_id: str = "") -> SafeString:
    """The SVG of ``series`` over [start, end) (aware datetimes at whole minutes; labels in UTC)."""
    minutes = max(1, int((end - start) / timedelta(minutes=1)))
    lines = [(s, runs(s.values, start, end)) for s in series]
    peak = max((v for _, rs in lines for run in rs for _, v in run), default=None)
    top = _nice_top(peak or 0.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: float) -> float:
        return LEFT + plot_w * i / max(1, minutes - 1)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    ident = escape(chart_id or "meepo-chart")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="meepo-chart" id="{ident}" role="img" '
           f'aria-labelledby="{ident}-title" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">',
           f'<title id="{ident}-title">{escape(title)}</title>',
           f'<rect class="meepo-chart-frame" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" '
           f'fill="none" stroke="#ccc"/>']
    for value in (0.0, top / 2, top):  # y axis labels and grid
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                   f'stroke="#eee"/>')
        out.append(f'<text class="meepo-chart-y" x="{LEFT - 4}" y="{y(value) + 4:.1f}" text-anchor="end" '
                   f'font-size="11">{escape(_label(value, unit))}</text>')
    for i, anchor in ((0, "start"), ((minutes - 1) / 2, "middle"), (minutes - 1, "end")):  # x axis labels
        moment = start + timedelta(minutes=i)
        out.append(f'<text class="meepo-chart-x" x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" '
                   f'font-size="11">{moment:%H:%M}</text>')
    for n, (s, rs) in enumerate(lines):
        colour = COLOURS[n % len(COLOURS)]
        out.append(f'<text class="meepo-chart-legend" x="{LEFT + 110 * n}" y="14" font-size="12" '
                   f'fill="{colour}">&#9644; {escape(s.name)}</text>')
        for run in rs:
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in run)
            if len(run) == 1:  # a single minute: a dot, or it would not show
                i, v = run[0]
                out.append(f'<circle class="meepo-chart-point" cx="{x(i):.1f}" cy="{y(v):.1f}" r="2" '
                           f'fill="{colour}" data-series="{escape(s.name)}"/>')
            out.append(f'<polyline class="meepo-chart-line" data-series="{escape(s.name)}" '
                       f'data-points="{len(run)}" points="{points}" fill="none" stroke="{colour}" '
                       f'stroke-width="1.5"/>')
    if peak is None:
        out.append(f'<text class="meepo-chart-empty" x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" '
                   f'text-anchor="middle" font-size="13" fill="#666">no data yet</text>')
    out.append("</svg>")
    return mark_safe("".join(out))  # every interpolated text above is escaped
