"""A harness child: ``python -m bench.child SPEC OUT`` runs one workload on one system ``runs`` times.

A process per system and workload keeps each system's settings, imports and global state (a Django settings
module, a Celery app, a Dramatiq broker) apart. SPEC is a JSON file ``{"config", "system", "workload"}``; OUT
receives ``{"samples", "checks", "error"}`` — the samples of the runs that finished, even when a later run
failed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import uuid
from dataclasses import asdict
from pathlib import Path

from .config import Config
from .hook_workloads import HOOKS
from .meepo_workloads import MEEPO_ONLY
from .scale_workloads import SCALE
from .services import PrivateRedis
from .systems import SYSTEMS
from .workloads import COMMON, Collector, Context

log = logging.getLogger("bench.child")

WORKLOADS = {w.name: w for w in (*COMMON, *MEEPO_ONLY, *SCALE, *HOOKS)}
WARM_UP = 50


def run(config: Config, system_name: str, workload_name: str, out: Collector) -> None:
    cls = SYSTEMS[system_name]
    workload = WORKLOADS[workload_name]
    prefix = f"bench-{cls.name}-{uuid.uuid4().hex[:8]}"
    with contextlib.ExitStack() as stack:
        private = stack.enter_context(PrivateRedis()) if workload.private_redis else None
        if private is not None:
            broker = f"{private.url}/0"
        else:
            broker = config.services.redis(cls.name) if cls.uses_redis else ""
        system = cls(config, broker_url=broker, prefix=prefix)
        system.prepare()
        system.push_one(range(WARM_UP))  # connections, imports and caches warm before anything is timed
        system.reset()
        try:
            for number in range(config.runs):
                workload.run(system, Context(config, out, number, private))
        finally:
            try:
                system.reset()
            except Exception:
                log.exception("could not reset %s after %s", cls.label, workload_name)


def main(argv: list[str]) -> int:
    spec_path, out_path = argv
    spec = json.loads(Path(spec_path).read_text())
    config = Config.from_json(spec["config"])
    logging.basicConfig(level=spec.get("log_level", "INFO"), stream=sys.stderr,
                        format=f"%(asctime)s {spec['system']}/{spec['workload']} %(levelname)s %(message)s")
    out = Collector(spec["system"])
    error = None
    try:
        run(config, spec["system"], spec["workload"], out)
    except Exception as exc:
        log.exception("failed")
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    result = {"samples": [asdict(s) for s in out.samples], "checks": [asdict(c) for c in out.checks],
              "error": error}
    Path(out_path).write_text(json.dumps(result))
    return 0 if error is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
