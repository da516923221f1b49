"""docs/reference.md's tables of settings and task options, printed from the one table in ``spec``.

Each table sits between two HTML comments in the file (``<!-- BEGIN generated: NAME … -->`` and
``<!-- END generated: NAME -->``); :func:`rewrite` replaces what lies between them and keeps the rest.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import OPTIONS, SETTINGS

COMMAND = "python -m django_meepo.spec --write docs/reference.md"


def show(value: Any) -> str:
    """A default as the docs show it: as one would write it in settings.py."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is None or isinstance(value, bool | int | float):
        return f"`{value!r}`"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def settings_table() -> str:
    rows = [f"| `{s.key}` | {show(s.default)} | {s.doc} |" for s in SETTINGS.values()]
    return "\n".join(["| key | default | meaning |", "|---|---|---|", *rows])


def options_table() -> str:
    rows = [f"| `{o.key}` | `{o.name}` | {f'`{o.meepo}`' if o.meepo else '—'} | {o.default_doc or show(o.default)} "
            f"| {o.doc} |" for o in OPTIONS.values()]
    return "\n".join(["| setting | decorator | Meepo | default | meaning |", "|---|---|---|---|---|", *rows])


TABLES = {"settings": settings_table, "options": options_table}


def begin(name: str) -> str:
    return f"<!-- BEGIN generated: {name} (from django_meepo/spec; regenerate with `{COMMAND}`) -->"


def end(name: str) -> str:
    return f"<!-- END generated: {name} -->"


def blocks() -> dict[str, str]:
    """Each table with its markers, as it must stand in docs/reference.md."""
    return {name: f"{begin(name)}\n{render()}\n{end(name)}" for name, render in TABLES.items()}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- BEGIN generated: {name}\b.*?-->.*?{re.escape(end(name))}", re.DOTALL)


def found_blocks(text: str) -> dict[str, str | None]:
    """The generated blocks as they stand in ``text`` (None where a block's markers are missing)."""
    return {name: (m.group(0) if (m := _pattern(name).search(text)) else None) for name in TABLES}


def rewrite(text: str) -> str:
    """``text`` with each generated block replaced by what the spec prints; raises ValueError if one is missing."""
    for name, block in blocks().items():
        text, count = _pattern(name).subn(block.replace("\\", "\\\\"), text)
        if count != 1:
            raise ValueError(f"expected one {name!r} block between {begin(name)!r} and {end(name)!r}, found {count}")
    return text
