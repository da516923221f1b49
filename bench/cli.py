"""``python -m bench``: run the benchmark and print its table (see docs/benchmarks.md).

    python -m bench                          # the full run: every installed system, 5 runs per figure
    python -m bench --quick                  # small sizes, 3 runs: minutes, for development
    python -m bench --systems meepo,huey --workloads processed,flush --runs 2 --size jobs=5000
    python -m bench --json results.json --markdown table.md
    python -m bench --report results.json --markdown table.md   # the report of a saved run, again
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path

from .child import WORKLOADS
from .config import FULL, QUICK, Config, Services, Sizes
from .report import render_markdown, render_text
from .runner import Results, run
from .systems import SYSTEMS

log = logging.getLogger("bench")

QUICK_RUNS = 3
DEFAULTS = Services()


def _names(known: list[str], what: str) -> Callable[[str], tuple[str, ...]]:
    def parse(value: str) -> tuple[str, ...]:
        names = tuple(n.strip() for n in value.split(",") if n.strip())
        unknown = [n for n in names if n not in known]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(unknown)} (known: {', '.join(known)})")
        return names

    return parse


def _size(value: str) -> tuple[str, float]:
    name, _, number = value.partition("=")
    kinds = {f.name: f.type for f in fields(Sizes)}
    if name not in kinds or not number:
        raise argparse.ArgumentTypeError(f"--size NAME=VALUE, NAME one of {', '.join(kinds)}")
    try:
        return name, (int(number) if kinds[name] == "int" else float(number))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {name}: {number!r} is not a number") from None


def parser() -> argparse.ArgumentParser:
    variants = sorted({v.key for cls in SYSTEMS.values() for v in cls.variants})
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"small sizes and {QUICK_RUNS} runs (development)")
    p.add_argument("--runs", type=int, help="runs per figure (default 5; 3 with --quick)")
    p.add_argument("--systems", type=_names(list(SYSTEMS), "system"), default=(),
                   help=f"comma-separated, of {', '.join(SYSTEMS)} (default: every installed one)")
    p.add_argument("--workloads", type=_names(list(WORKLOADS), "workload"), default=(),
                   help=f"comma-separated, of {', '.join(WORKLOADS)} (default: all)")
    p.add_argument("--variants", type=_names(variants, "variant"), default=(),
                   help=f"worker layouts to process with, of {', '.join(variants)} (default: all)")
    p.add_argument("--size", type=_size, action="append", default=[], metavar="NAME=VALUE",
                   help=f"override a size: {', '.join(f.name for f in fields(Sizes))}")
    p.add_argument("--database-url", default=DEFAULTS.database_url, help="MariaDB server (default %(default)s)")
    p.add_argument("--redis-url", default=DEFAULTS.redis_url, help="Redis server (default %(default)s)")
    p.add_argument("--meepo-db", default=DEFAULTS.meepo_db, help="django-meepo's database (default %(default)s)")
    p.add_argument("--dtdb-db", default=DEFAULTS.dtdb_db, help="django-tasks-db's database (default %(default)s)")
    p.add_argument("--postgres-url", default=DEFAULTS.postgres_url,
                   help="PostgreSQL server of the pg-latency workload (default %(default)s)")
    p.add_argument("--json", type=Path, help="also write every sample and the machine to this JSON file")
    p.add_argument("--markdown", type=Path, help="also write the report as Markdown (for docs/benchmarks.md)")
    p.add_argument("--report", type=Path, metavar="JSON",
                   help="run nothing: report the run saved in this --json file (with --markdown: as Markdown too)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def config_from(args: argparse.Namespace) -> Config:
    sizes = replace(QUICK if args.quick else FULL, **dict(args.size))
    services = Services(database_url=args.database_url, redis_url=args.redis_url, meepo_db=args.meepo_db,
                        dtdb_db=args.dtdb_db, postgres_url=args.postgres_url)
    runs = args.runs or (QUICK_RUNS if args.quick else 5)
    if runs < 1:
        raise SystemExit("--runs must be at least 1")
    return Config(runs=runs, sizes=sizes, services=services, systems=args.systems, workloads=args.workloads,
                  variants=args.variants, quick=args.quick)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    if args.report:
        results = Results.from_json(args.report.read_text())
    else:
        results = run(config_from(args), shlex.join(["python", "-m", "bench", *argv]))
    print(render_text(results))
    if args.json and not args.report:
        args.json.write_text(results.to_json())
        log.info("wrote %s", args.json)
    if args.markdown:
        args.markdown.write_text(render_markdown(results))
        log.info("wrote %s", args.markdown)
    return 1 if results.errors else 0
