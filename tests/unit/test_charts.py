"""charts.line_chart: the SVG drawn from per-minute values (points, gaps, axes, title, escaping, no data)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from django_meepo.charts import Series, line_chart, runs

START = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
NS = "{http://www.w3.org/2000/svg}"


def minute(i: int) -> datetime:
    return START + timedelta(minutes=i)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # our own output


def points(polyline: ET.Element) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in re.findall(r"([\d.]+),([\d.]+)", polyline.get("points", ""))]


def test_a_point_per_minute_with_a_value_and_higher_values_drawn_higher() -> None:
    values = {minute(i): float(i) for i in range(10)}
    root = parse(line_chart([Series("done", values)], start=START, end=END, title="Done per minute"))
    [line] = root.iter(f"{NS}polyline")
    drawn = points(line)
    assert len(drawn) == 10 and line.get("data-points") == "10"
    xs, ys = [p[0] for p in drawn], [p[1] for p in drawn]
    assert xs == sorted(xs) and len(set(xs)) == 10  # left to right, one x per minute
    assert ys == sorted(ys, reverse=True)  # SVG's y grows downwards: larger values are higher up
    assert "no data yet" not in line_chart([Series("done", values)], start=START, end=END, title="t")


def test_a_missing_minute_breaks_the_line_and_a_lone_minute_is_a_dot() -> None:
    values: dict[datetime, float | None] = {minute(0): 1, minute(1): 2, minute(2): None, minute(3): 4,
                                            minute(5): 3}
    assert runs(values, START, END) == [[(0, 1.0), (1, 2.0)], [(3, 4.0)], [(5, 3.0)]]
    root = parse(line_chart([Series("depth", values)], start=START, end=END, title="Depth"))
    assert [len(points(p)) for p in root.iter(f"{NS}polyline")] == [2, 1, 1]
    assert len(list(root.iter(f"{NS}circle"))) == 2


def test_values_outside_the_window_are_not_drawn() -> None:
    values = {START - timedelta(minutes=1): 5.0, END: 7.0, minute(30): 1.0}
    root = parse(line_chart([Series("done", values)], start=START, end=END, title="t"))
    assert sum(len(points(p)) for p in root.iter(f"{NS}polyline")) == 1


def test_no_data_says_so_and_draws_no_line() -> None:
    svg = line_chart([Series("done", {}), Series("failed", {})], start=START, end=END, title="Nothing")
    root = parse(svg)
    assert not list(root.iter(f"{NS}polyline"))
    assert "no data yet" in svg


def test_title_axes_and_legend_are_there_and_escaped() -> None:
    svg = line_chart([Series("<p50>", {minute(0): 0.25, minute(1): 3.5})], start=START, end=END,
                     title='Latency of "a<b"', unit="s", chart_id="c1")
    root = parse(svg)
    assert root.get("role") == "img" and root.get("aria-labelledby") == "c1-title"
    title = root.find(f"{NS}title")
    assert title is not None and title.text == 'Latency of "a<b"'
    texts = [t.text or "" for t in root.iter(f"{NS}text")]
    assert "14:00" in texts and "14:59" in texts  # the x axis: the window's first and last minute
    assert "0s" in texts and "5s" in texts  # the y axis: 0 to a round number above the peak
    assert any("<p50>" in t for t in texts)  # the legend, escaped in the markup, parsed back
    assert "<p50>" not in svg
