"""``python -m bench.chaos --minutes N --seed S --dispatch redis|database|failover
[--topology standalone|sentinel|cluster] [--faults a,b,…]``.

Bad input (zero or negative minutes, an unknown fault or dispatch mode, a URL that is not MariaDB/MySQL) is a
clear error and exit code 2, before anything starts. Exit 0 when every check passes, 1 when one fails, 130 when
interrupted. SIGINT and SIGTERM end the run through the same ``finally`` that stops every process the tool
started (by PID) and drops its database.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from datetime import UTC, datetime
from types import FrameType

from . import faults
from .history import mysql_params
from .topology import TOPOLOGIES

DISPATCH = ("redis", "database", "failover")


def minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--minutes must be a number, not {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"--minutes must be more than 0, not {text!r}")
    return value


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--seed must be 0 or more, not {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=minutes, required=True, help="how long faults fire and jobs are pushed")
    p.add_argument("--seed", type=seed, default=int(datetime.now(UTC).strftime("%Y%m%d")),
                   help="seeds the schedule, the jobs and the faults (default: today's date, YYYYMMDD)")
    p.add_argument("--dispatch", choices=DISPATCH, default="failover",
                   help="redis: the Redis dispatcher alone; database: the table; failover: Redis, failing over "
                        "to the table while Redis is down (the default configuration)")
    p.add_argument("--topology", choices=list(TOPOLOGIES), default="standalone",
                   help="the run's Redis: one redis-server; a master, a replica and 3 sentinels (whose drill, "
                        "sentinel_failover, kills the master); or a Redis Cluster of 3 masters and 3 replicas "
                        "(cluster_failover kills a master, cluster_slot_migration moves a task's slot)")
    p.add_argument("--faults", default=None, help=f"comma-separated, from: {', '.join(faults.REGISTRY)} "
                                                  "(default: all of the topology's; none of Redis's with "
                                                  "--dispatch database)")
    p.add_argument("--database-url", default=os.environ.get("CHAOS_DATABASE_URL", "mysql://root@127.0.0.1:3306"),
                   help="the MariaDB/MySQL server (a database meepo_chaos_<seed>_<dispatch> is made and dropped)")
    p.add_argument("--keep", action="store_true", help="keep the database and the worker logs afterwards")
    return p


class Interrupted(BaseException):
    """SIGTERM or SIGINT reached the tool."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        if args.topology != "standalone" and args.dispatch == "database":
            raise ValueError(f"--topology {args.topology} needs Redis: not with --dispatch database")
        chosen = (faults.parse(args.faults, args.topology) if args.faults is not None
                  else faults.names(args.dispatch, args.topology))
        mysql_params(args.database_url)
    except ValueError as exc:
        p.error(str(exc))
    from .runner import Config, Runner

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger("bench.chaos").addHandler(handler)
    config = Config(args.minutes, args.seed, args.dispatch, chosen, args.database_url, args.keep, args.topology)
    print(f"chaos: seed {config.seed}, dispatch {config.dispatch}, topology {config.topology}, {config.minutes:g} min, "
          f"faults {', '.join(chosen)}", flush=True)
    runner = Runner(config)
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        runner.setup()
        checks, drained = runner.run()
        ok = runner.verdict(checks, drained)
        if not ok and getattr(runner, "fleet", None) is not None:
            print(f"worker logs: {runner.fleet.logdir}" + ("" if config.keep else " (deleted; --keep keeps them)"))
        print(f"\nchaos: seed {config.seed}, dispatch {config.dispatch}: {'PASS' if ok else 'FAIL'}", flush=True)
        return 0 if ok else 1
    except Interrupted as exc:
        print(f"chaos: interrupted by {exc}; stopping everything it started", file=sys.stderr, flush=True)
        return 130
    finally:
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        try:
            runner.teardown()
        finally:
            for s, before in previous.items():
                signal.signal(s, before)
