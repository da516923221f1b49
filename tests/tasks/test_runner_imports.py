"""The Tasks runner imports nothing a payload merely names (issue 9, item 9).

A Tasks job's payload is data: anyone with database access can write a row, or it can be corrupt. Its path must
be checked before any import — a module is imported only when it is already loaded or part of an installed app —
and a refused path fails the job once, with an error that names the path and says why.
"""

from __future__ import annotations

import os
import re
import sys

import pytest

from django_meepo import Job
from django_meepo.tasks.errors import NotATask, TaskNotFound
from django_meepo.tasks.payload import TaskSpec
from django_meepo.tasks.runner import load_task
from tests.support.services import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

MARKER_MODULE = "tests.support.import_marker"
MARK = "MEEPO_TEST_IMPORT_MARKER_IMPORTED"  # what the module sets on import (not imported here, of course)


@pytest.fixture(autouse=True)
def never_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MARK, raising=False)
    assert MARKER_MODULE not in sys.modules, "the marker module was imported before the test"


def _push_spec(path: str) -> Job:
    spec = {"django_task": path, "backend": "default", "args": [], "kwargs": {}, "run_after": None,
            "max_attempts": None, "retry_backoff": None}
    return Job.objects.push("default", json=spec)


def _failed(job: Job) -> Job:
    return wait_until(lambda: Job.objects.filter(id=job.id, status="failed").first(), timeout=30,
                      message=f"job {job.id} to fail")


def test_a_payload_naming_a_module_outside_the_project_never_imports_it(run_worker) -> None:  # type: ignore[no-untyped-def]
    run_worker("default")
    job = _push_spec(f"{MARKER_MODULE}.run")
    failed = _failed(job)
    assert MARKER_MODULE not in sys.modules and MARK not in os.environ, "the module a payload named was imported"
    assert failed.attempts == 1, "refused once and for all: retrying would never make it a Task of this project"
    assert f"'{MARKER_MODULE}.run' was refused" in failed.last_error
    assert f"its module '{MARKER_MODULE}' is not loaded in this process and is not part of an installed app" \
        in failed.last_error
    assert failed.attempt_set.get().error_class == "django_meepo.tasks.errors.NotATask"


def test_a_loaded_callable_that_is_not_a_task_is_refused_and_never_called(run_worker) -> None:  # type: ignore[no-untyped-def]
    run_worker("default")
    failed = _failed(_push_spec("os.system"))
    assert failed.attempts == 1
    assert "'os.system' is a builtin_function_or_method, not a Django Task" in failed.last_error


@pytest.mark.parametrize("path", [f"{MARKER_MODULE}.run", "no_such_package.tasks.send", "os.path.join",
                                  "system", ".relative.name", "testproject.djtasks.", "a b.c"])
def test_refused_paths_import_nothing(path: str) -> None:
    before = set(sys.modules)
    with pytest.raises(NotATask, match=r"nothing was imported|was not imported|not a Django Task") as raised:
        load_task(TaskSpec(path=path, backend="default"))
    assert repr(path) in str(raised.value), "the error names the path"
    assert set(sys.modules) == before, f"loading {path!r} imported {sorted(set(sys.modules) - before)}"
    assert MARK not in os.environ


def test_an_installed_apps_module_is_still_imported_and_a_missing_one_is_retryable() -> None:
    """Within INSTALLED_APPS a missing module is a deploy skew (TaskNotFound, retried), not a refusal."""
    with pytest.raises(TaskNotFound, match=re.escape("'testproject.not_deployed_yet.send' does not import")):
        load_task(TaskSpec(path="testproject.not_deployed_yet.send", backend="default"))
    from testproject import djtasks

    assert load_task(TaskSpec(path="testproject.djtasks.add", backend="default")) is djtasks.add
