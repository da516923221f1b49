"""A module a Tasks job must never import: importing it leaves a visible mark (tests/tasks/test_runner_imports.py).

``tests`` is not an installed app and nothing imports this module, so a payload naming ``run`` here names code
that is neither loaded nor part of the project.
"""

import os

MARK = "MEEPO_TEST_IMPORT_MARKER_IMPORTED"
os.environ[MARK] = "1"


def run() -> None:
    os.environ[MARK] = "called"
