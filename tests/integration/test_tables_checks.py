"""System checks for per-task job tables (tables.py): E015 a MODEL that is no job model, E016 a job table not
migrated, E017 a job model routed to another database. Each names the task and says how to fix it."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from django_meepo.checks import check_settings, check_table_routing, check_tables_migrated
from django_meepo.exceptions import ConfigurationError
from django_meepo.registry import get_task
from testproject.models import OwnAttempt


def with_task(**entry: object) -> dict[str, object]:
    return {**settings.MEEPO, "TASKS": {**settings.MEEPO["TASKS"], "extra": entry}}


@pytest.mark.parametrize(("model", "fragment"), [
    ("testproject.Run", "'testproject.Run' is not a concrete subclass of django_meepo.models.AbstractJob"),
    ("django_meepo.Dashboard", "not a concrete subclass"),  # a proxy
    ("nope.Model", "'nope.Model' is not an installed model"),
    ("OwnJob", "must be an 'app_label.ModelName' string"),
    (7, "must be an 'app_label.ModelName' string, not 7"),
])
def test_a_model_that_is_no_job_model_is_e014(model: object, fragment: str) -> None:
    with override_settings(MEEPO=with_task(FUNCTION="testproject.jobs.demo", MODEL=model)):
        found = [m for m in check_settings() if m.id == "meepo.E015"]
        assert len(found) == 1 and fragment in found[0].msg and "'extra'" in found[0].msg, found
        assert "AbstractJob" in (found[0].hint or "")
        with pytest.raises(ConfigurationError, match=fragment.split("'")[0] or "MODEL"):
            get_task("extra")


def test_a_model_named_in_settings_is_clean() -> None:
    with override_settings(MEEPO=with_task(FUNCTION="testproject.jobs.demo", MODEL="testproject.OwnJob")):
        assert check_settings() == []
        assert get_task("extra").model == "testproject.OwnJob"


class Elsewhere:
    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return "elsewhere" if model._meta.label == "testproject.OwnJob" else None


def test_a_job_model_routed_to_another_database_is_e016() -> None:
    assert check_table_routing() == []
    with override_settings(DATABASE_ROUTERS=[f"{__name__}.Elsewhere"]):
        [error] = check_table_routing()
    assert error.id == "meepo.E017" and "testproject.OwnJob" in error.msg and "'record_own'" in error.msg
    assert "'elsewhere'" in error.msg and "DATABASE_ROUTERS" in (error.hint or "")


@pytest.mark.django_db(transaction=True)
def test_an_unmigrated_job_table_is_e015() -> None:
    assert check_tables_migrated(databases=["default"]) == []
    with connection.schema_editor() as editor:
        editor.delete_model(OwnAttempt)
    try:
        [error] = check_tables_migrated(databases=["default"])
    finally:
        with connection.schema_editor() as editor:
            editor.create_model(OwnAttempt)
    assert error.id == "meepo.E016" and "t_my_job_0831_attempt" in error.msg and "'record_own'" in error.msg
    assert "makemigrations testproject" in (error.hint or "")
    assert check_tables_migrated(databases=["default"]) == []


@pytest.mark.django_db(transaction=True)
def test_a_missing_job_table_never_stops_migrate_and_stops_meepo_consume() -> None:
    """`migrate` runs the database checks before it migrates (``check(databases=[...])``): a check that its table
    is missing would stop the very command that creates it (a new user's first `migrate` after adding a job model;
    CI's demo and database-restart tests failed on it). E016 runs where a worker starts instead."""
    from django.core.checks import run_checks

    from django_meepo.checks import TABLES_TAG

    with connection.schema_editor() as editor:
        editor.delete_model(OwnAttempt)
    try:
        as_migrate = run_checks(databases=["default"])  # what `migrate` and `check --database` run
        as_consume = run_checks(tags=[TABLES_TAG], include_deployment_checks=True, databases=["default"])
    finally:
        with connection.schema_editor() as editor:
            editor.create_model(OwnAttempt)
    assert "meepo.E016" not in {m.id for m in as_migrate}
    assert [m.id for m in as_consume] == ["meepo.E016"]
