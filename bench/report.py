"""The report: the machine, one table of every system against django-meepo, one of django-meepo's targets.

Rendered as aligned text for the terminal or as Markdown for docs/benchmarks.md, from the same rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .config import FULL, Config
from .figures import BY_KEY, COMPARED, MEEPO_ONLY, PROCESSED_FACTOR, PROCESSED_FLOOR, Figure
from .runner import RAN, Results
from .stats import Sample, Summary
from .systems import SYSTEMS
from .workloads import NOTES

MEEPO = "meepo"
WORKLOAD_OF = {"processed": "processed", "push_one": "processed", "push_bulk": "push-bulk", "lost": "flush",
               "flushed_at": "flush"}
UNSUPPORTED = {"push_bulk": "no bulk API", "lost": "no Redis to flush"}


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    numeric: frozenset[int]  # columns aligned right


class Summaries:
    def __init__(self, samples: Sequence[Sample]) -> None:
        grouped: dict[tuple[str, str, str], list[Sample]] = defaultdict(list)
        for s in samples:
            grouped[(s.system, s.figure, s.variant)].append(s)
        self.by_key = {k: summary for k, v in grouped.items() if (summary := Summary.of(v)) is not None}

    def variants(self, system: str, figure: str) -> list[str]:
        found = {v for (s, f, v) in self.by_key if s == system and f == figure}
        order = ["", *(v.key for v in SYSTEMS[system].variants)]
        return [v for v in order if v in found] + sorted(found - set(order))  # e.g. the hosts workload's

    def get(self, system: str, figure: str, variant: str = "") -> Summary | None:
        return self.by_key.get((system, figure, variant))

    def best(self, system: str, figure: Figure, *, others: bool = False) -> float | None:
        """The best median of ``figure`` for ``system`` (or, with ``others``, for every system but it)."""
        medians = [s.median for (name, f, _), s in self.by_key.items()
                   if f == figure.key and (name != system if others else name == system)]
        if not medians:
            return None
        return max(medians) if figure.higher_is_better else min(medians)


def variant_label(system: str, key: str) -> str:
    labels = {v.key: v.label for v in SYSTEMS[system].variants}
    return labels.get(key, key)


def cells(figure: Figure, summary: Summary) -> list[str]:
    mark = " *" if summary.notes else ""
    return [str(summary.runs), figure.show(summary.minimum), figure.show(summary.median) + mark,
            figure.show(summary.maximum)]


def ratio(median: float, reference: float | None) -> str:
    if reference is None or reference == 0:
        return "—"
    value = median / reference
    return f"{value:.2f}×" if value >= 0.1 else f"{value:.3f}×"


def comparison(results: Results, summaries: Summaries) -> Table:
    rows: list[list[str]] = []
    ran = [name for name in SYSTEMS if results.statuses.get(name) == RAN]
    for figure in COMPARED:
        reference = summaries.best(MEEPO, figure)
        heading = figure.heading(results.config.sizes)
        for name in ran:
            label = SYSTEMS[name].label
            variants = summaries.variants(name, figure.key)
            if not variants and _unsupported(name, figure, results):
                rows.append([heading, label, "", "", "", UNSUPPORTED[figure.key], "", ""])
            for key in variants:
                summary = summaries.get(name, figure.key, key)
                assert summary is not None
                rows.append([heading, label, variant_label(name, key), *cells(figure, summary),
                             ratio(summary.median, reference) if figure.compared else ""])
    header = ["figure", "system", "workers", "runs", "min", "median", "max", "vs django-meepo (median / best)"]
    return Table("All systems, same machine, same run", header, rows, frozenset({3, 4, 5, 6, 7}))


def _unsupported(name: str, figure: Figure, results: Results) -> bool:
    workloads = results.config.workloads
    selected = not workloads or WORKLOAD_OF[figure.key] in workloads
    cls = SYSTEMS[name]
    return selected and figure.key in UNSUPPORTED and (
        (figure.key == "push_bulk" and cls.bulk is None) or (figure.key == "lost" and not cls.uses_redis))


def targets(results: Results, summaries: Summaries) -> Table:
    sizes = results.config.sizes
    rows: list[list[str]] = []
    fastest_peer = summaries.best(MEEPO, BY_KEY["processed"], others=True)
    processed_goal = max(PROCESSED_FLOOR, PROCESSED_FACTOR * (fastest_peer or 0))
    for figure in (BY_KEY["processed"], BY_KEY["push_bulk"], BY_KEY["lost"], *MEEPO_ONLY):
        for key in summaries.variants(MEEPO, figure.key):
            summary = summaries.get(MEEPO, figure.key, key)
            assert summary is not None
            if figure.key == "processed":
                goal = f"≥ {processed_goal:,.0f}/s (2× the fastest peer, at least 5,000/s)"
                met = _verdict(summary.median >= processed_goal)
            elif figure.target is None:
                goal, met = "", ""
            elif not figure.judged(sizes):
                goal, met = figure.target.text, "not judged: scaled-down run"
            else:
                goal, met = figure.target.text, _verdict(figure.target.met(summary.median))
            rows.append([figure.heading(sizes), variant_label(MEEPO, key) if key else "", *cells(figure, summary),
                         goal, met])
    header = ["figure", "workers", "runs", "min", "median", "max", "issue 6 target", "met (median)"]
    return Table("django-meepo against the targets of issue 6", header, rows, frozenset({2, 3, 4, 5}))


def _verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def preamble(results: Results) -> list[str]:
    config = results.config
    m = results.machine
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    kind = "PRELIMINARY: --quick, sizes scaled down" if config.quick or config.sizes != FULL else "full sizes"
    if config.runs < 5:
        kind += f", {config.runs} run{'' if config.runs == 1 else 's'} per figure where issue 6 asks for 5"
    if config.systems or config.workloads or config.variants:
        kind += ", a selection of systems or workloads"
    lines = [
        f"django-meepo benchmark ({kind})",
        f"date: {results.started} to {results.finished}",
        f"command: {results.command}",
        f"machine: {m['cores']} cores, {m['cpu']}, {m['platform']}",
        "load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in results.load_before) + " before, "
        + " ".join(f"{x:.2f}" for x in results.load_after) + " after",
        f"versions: {versions}",
        f"runs per figure: {config.runs} (minimum / median / maximum); no-op jobs; sizes: {_sizes(config)}",
    ]
    return lines


def _sizes(config: Config) -> str:
    s = config.sizes
    return (f"{s.jobs:,} jobs pushed then processed (bulk {s.bulk_size:,} per call), {s.flush_jobs:,} for the "
            f"flush, {s.tx_jobs:,} in transactions, {s.latency_samples} latency samples, RSS at {s.rss_small:,} "
            f"and {s.rss_large:,} jobs, {s.sweep_jobs:,} swept; a processing run is time-boxed at "
            f"{s.time_box:g} s, and ends when no job ran for {s.stall:g} s")


def epilogue(results: Results) -> list[str]:
    lines = []
    notes = sorted({s.note for s in results.samples if s.note})
    lines += [f"* in some runs, {note}: {NOTES.get(note, '')}" for note in notes]
    lines.append("systems: " + "; ".join(f"{SYSTEMS[n].label}: {s}" for n, s in results.statuses.items()))
    short = [c for c in results.checks if c.ran < c.expected and c.workload != "flush"]
    total = len([c for c in results.checks if c.workload != "flush"])
    lines.append(f"counts: every job ran in {total - len(short)} of {total} measurements (the flush workload's "
                 "losses are in the table)")
    lines += [f"  short: {SYSTEMS[c.system].label} {c.workload} {c.variant} run {c.run + 1}: {c.ran:,} of "
              f"{c.expected:,} ran" for c in short]
    lines += [f"error: {e}" for e in results.errors]
    return lines


def tables(results: Results) -> list[Table]:
    summaries = Summaries(results.samples)
    return [table for table in (comparison(results, summaries), targets(results, summaries)) if table.rows]


def render_text(results: Results) -> str:
    parts = ["\n".join(preamble(results))]
    for table in tables(results):
        rows = [list(table.header), *map(list, table.rows)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(table.header))]
        lines = [table.title, ""]
        for n, row in enumerate(rows):
            lines.append("  ".join(c.rjust(w) if i in table.numeric and n else c.ljust(w)
                                   for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        parts.append("\n".join(lines))
    parts.append("\n".join(epilogue(results)))
    return "\n\n".join(parts) + "\n"


def render_markdown(results: Results) -> str:
    title, *facts = preamble(results)
    parts = [f"**{title}**", "\n".join(f"- {line}" for line in facts)]
    for table in tables(results):
        align = ["---:" if i in table.numeric else "---" for i in range(len(table.header))]
        lines = [f"#### {table.title}", "", "| " + " | ".join(table.header) + " |", "|" + "|".join(align) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table.rows]
        parts.append("\n".join(lines))
    parts.append("\n".join(f"- {line.strip()}" for line in epilogue(results)))
    return "\n\n".join(parts) + "\n"
