"""Fault injection for worker subprocesses: ``MEEPO_TEST_FAULT=<name>`` installs the hook of that name.

Each hook patches one place in the worker process; the acceptance tests name them. An unknown name fails the
process at start, so a test can never run without the fault it asked for.
"""

from __future__ import annotations

from collections.abc import Callable

HOOKS: dict[str, Callable[[], None]] = {}


def install(name: str) -> None:
    for part in filter(None, name.split(",")):
        if part not in HOOKS:
            raise RuntimeError(f"MEEPO_TEST_FAULT: unknown fault {part!r} (known: {', '.join(sorted(HOOKS))})")
        HOOKS[part]()
