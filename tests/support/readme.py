"""The README's "Use it" section, read as a new user reads it: its code blocks, its inline commands, its files.

tests/acceptance/test_readme_use_it.py follows these steps in a fresh virtualenv and a new project; when the
README changes, the test follows it. Nothing here copies a step: each comes from README.md.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
FILE_COMMENT = re.compile(r"^# ([\w./-]+\.py)\b.*$", re.M)
INLINE = re.compile(r"`([^`\n]+)`")


@dataclass(frozen=True, slots=True)
class Block:
    language: str
    text: str

    def commands(self) -> list[str]:
        """The shell commands of a bash block: one per line, comments cut, ``a && b`` split into a and b."""
        found: list[str] = []
        for line in self.text.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                found += [part.strip() for part in line.split("&&")]
        return found


def section(readme: Path, title: str = "Use it") -> str:
    """The text of the README's ``## <title>`` section, up to the next ``## `` heading."""
    text = readme.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.M | re.S)
    if match is None:
        raise AssertionError(f"README.md has no '## {title}' section")
    return match.group(1)


def blocks(text: str) -> list[Block]:
    return [Block(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def files(block: Block) -> dict[str, str]:
    """A python block split at its ``# path/to/file.py`` comment lines: {path: the lines under it}."""
    parts = FILE_COMMENT.split(block.text)
    return {path: body.strip("\n") + "\n" for path, body in zip(parts[1::2], parts[2::2], strict=True)}


def inline_commands(text: str, prefix: str) -> list[list[str]]:
    """Inline code spans of ``text`` (outside code blocks) that start with ``prefix``, as argv lists."""
    prose = FENCE.sub("", text)
    return [shlex.split(span) for span in INLINE.findall(prose) if span.startswith(prefix)]


def settings_lines(body: str) -> str:
    """The README's settings lines as Python appended to startproject's settings.py: ``[..., "x"]`` (the
    README's "your existing entries, then these") becomes ``[*NAME, "x"]`` for the name it assigns."""
    out = []
    for line in body.splitlines():
        match = re.match(r"^(\w+) = \[\.\.\., (.*)$", line)
        out.append(f"{match.group(1)} = [*{match.group(1)}, {match.group(2)}" if match else line)
    return "\n".join(out) + "\n"
