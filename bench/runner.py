"""Runs the benchmark: for each selected system that is installed, one child process per workload."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import machine
from .child import WORKLOADS
from .config import ROOT, Config
from .djangoproject import hooks
from .stats import Check, Sample
from .systems import SYSTEMS, System

log = logging.getLogger(__name__)

NOT_SELECTED = "not selected"
NOT_INSTALLED = "not installed"
RAN = "ran"


@dataclass
class Results:
    config: Config
    command: str
    started: str
    machine: dict[str, Any]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    finished: str = ""
    statuses: dict[str, str] = field(default_factory=dict)  # system → RAN, NOT_SELECTED or NOT_INSTALLED (…)
    samples: list[Sample] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        raw = asdict(self)
        raw["config"] = json.loads(self.config.to_json())
        return json.dumps(raw, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Results:
        raw = json.loads(text)
        return cls(config=Config.from_json(json.dumps(raw["config"])), command=raw["command"],
                   started=raw["started"], machine=raw["machine"], load_before=tuple(raw["load_before"]),
                   load_after=tuple(raw["load_after"]), finished=raw["finished"], statuses=raw["statuses"],
                   samples=[Sample.from_dict(s) for s in raw["samples"]],
                   checks=[Check.from_dict(c) for c in raw["checks"]], errors=raw["errors"])


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def status_of(cls: type[System], config: Config) -> str:
    missing = cls.missing()
    if missing:
        return f"{NOT_INSTALLED} ({', '.join(missing)} missing: pip install -e '.[bench]')"
    if config.systems and cls.name not in config.systems:
        return NOT_SELECTED
    return RAN


def run(config: Config, command: str) -> Results:
    results = Results(config=config, command=command, started=now(), machine=machine.describe(config.services),
                      load_before=machine.load())
    for cls in SYSTEMS.values():
        results.statuses[cls.name] = status_of(cls, config)
        if results.statuses[cls.name] != RAN:
            log.info("%s: %s", cls.label, results.statuses[cls.name])
            continue
        for workload in WORKLOADS.values():
            if (not config.workloads or workload.name in config.workloads) and workload.applies(cls):
                run_child(config, cls, workload.name, results)
    results.load_after = machine.load()
    results.finished = now()
    return results


def run_child(config: Config, cls: type[System], workload: str, results: Results) -> None:
    log.info("%s: %s (%d run%s)", cls.label, workload, config.runs, "" if config.runs == 1 else "s")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        spec, out = Path(tmp, "spec.json"), Path(tmp, "out.json")
        spec.write_text(json.dumps({"config": config.to_json(), "system": cls.name, "workload": workload,
                                    "log_level": logging.getLevelName(logging.getLogger().level)}))
        # The harness pushes without the optional extras' hooks (the hooks workload pushes in processes of its own).
        code = subprocess.run([sys.executable, "-m", "bench.child", str(spec), str(out)], cwd=ROOT,
                              env={**os.environ, hooks.ENV: hooks.NONE}, stdin=subprocess.DEVNULL,
                              check=False).returncode
        if not out.exists():
            results.errors.append(f"{cls.label} / {workload}: the child process exited with code {code}")
            return
        raw = json.loads(out.read_text())
    results.samples += [Sample.from_dict(s) for s in raw["samples"]]
    results.checks += [Check.from_dict(c) for c in raw["checks"]]
    if raw["error"]:
        results.errors.append(f"{cls.label} / {workload}: {raw['error']}")
