"""The core's import graph has no cycle — at import time, nor through imports inside functions.

models.py delegates ``Job.objects.push`` to push.py; everything below it (push, inserts, the statements, the
checked apply, the transports, the outbox) reaches the model through the app registry (``db.job_model``), so a
reader can take the modules in one order: states → db → sql → checked → statemachine → operators.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "django_meepo"
CORE = ("models", "push", "inserts", "statemachine", "operators", "checked", "sql", "effects", "outbox", "registry",
        "dispatch", "hooks", "states", "db", "clock", "committer", "monitor", "waiting", "holdings", "worker",
        "sweeper")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = [ast.Pass()]  # imports for annotations only
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
            graph[name].update(t for t in subs or [target] if t in modules and t != name)
    return graph


def test_the_core_has_no_import_cycle() -> None:
    modules = _modules()
    graph = _graph(modules)
    core = {n for n in modules if "." in n and n.split(".")[1] in CORE}
    state: dict[str, int] = {}

    def cycle_from(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for nxt in sorted(graph[name] & core):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt] if nxt in path else [*path, nxt]
            if nxt not in state and (found := cycle_from(nxt, [*path, nxt])):
                return found
        state[name] = 2
        return None

    for name in sorted(core):
        if name not in state:
            found = cycle_from(name, [name])
            assert found is None, f"import cycle: {' -> '.join(found or [])}"
    assert "django_meepo.push" in graph["django_meepo.models"], "the check sees imports inside functions too"
