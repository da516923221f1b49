"""The TASKS setting: queues become django-meepo tasks, OPTIONS map onto task options, checks name problems."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core import checks
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_meepo import UnknownTask
from django_meepo.registry import get_task, task_names
from django_meepo.tasks.compat import task_backends
from django_meepo.tasks.runner import run_django_task

BACKEND = "django_meepo.tasks.MeepoBackend"


def tasks_setting(queues: Any = ("default",), **options: Any) -> dict[str, Any]:
    return {"default": {"BACKEND": BACKEND, "QUEUES": list(queues) if isinstance(queues, tuple) else queues,
                        "OPTIONS": options}}


def meepo_messages(**setting: Any) -> list[checks.CheckMessage]:
    with override_settings(TASKS=setting or settings.TASKS):
        return [m for m in checks.run_checks() if str(m.id).startswith("meepo.")]


def test_each_queue_is_a_django_meepo_task_running_django_tasks() -> None:
    assert {"default", "emails", "slow"} <= set(task_names())
    emails = get_task("emails")
    assert emails.function is run_django_task
    assert (emails.options.max_failed_times, emails.options.parallel) == (2, 2), "OPTIONS['QUEUES']['emails']"
    assert (emails.options.lease_timeout, emails.options.retry_backoff) == (3, 0.2), "the backend's OPTIONS"
    assert get_task("default").options.max_failed_times == 3, "MAX_ATTEMPTS is MAX_FAILED_TIMES"
    assert get_task("default").options.auto_commit is True


def test_the_registry_follows_the_tasks_setting() -> None:
    with override_settings(TASKS=tasks_setting(("reports",), MAX_ATTEMPTS=7)):
        assert get_task("reports").options.max_failed_times == 7
        with pytest.raises(UnknownTask):
            get_task("emails")
    assert get_task("emails").function is run_django_task


def test_meepo_tasks_setting_can_still_tune_a_queue() -> None:
    meepo = {**settings.MEEPO, "TASKS": {**settings.MEEPO.get("TASKS", {}), "emails": {"PARALLEL": 9}}}
    with override_settings(MEEPO=meepo):
        assert get_task("emails").options.parallel == 9
        assert get_task("emails").options.max_failed_times == 2


def test_the_valid_test_configuration_has_no_problems() -> None:
    assert meepo_messages() == []


def test_the_backend_check_runs_through_djangos_check_framework() -> None:
    found = meepo_messages(**tasks_setting([]))
    assert [m.id for m in found] == ["meepo.E011"]
    assert "QUEUES" in found[0].msg and found[0].hint


def test_a_queue_name_that_cannot_be_a_task() -> None:
    found = meepo_messages(**tasks_setting(("ok", "has space")))
    assert "meepo.E012" in {m.id for m in found}
    assert any("'has space'" in m.msg for m in found if m.id == "meepo.E012")


@pytest.mark.parametrize(("options", "fragment"), [
    ({"COLOUR": "red"}, "unknown option 'COLOUR'"),
    ({"AUTO_COMMIT": False}, "AUTO_COMMIT"),
    ({"MAX_ATTEMPTS": 2, "MAX_FAILED_TIMES": 2}, "both MAX_ATTEMPTS and MAX_FAILED_TIMES"),
    ({"QUEUES": {"elsewhere": {"MAX_ATTEMPTS": 1}}}, "'elsewhere', which is not in"),
    ({"QUEUES": {"default": "fast"}}, "must be a dict of options"),
    ({"QUEUES": ["default"]}, "must map queue names to options"),
])
def test_bad_options_are_named(options: dict[str, Any], fragment: str) -> None:
    found = meepo_messages(**tasks_setting(("default",), **options))
    assert any(m.id == "meepo.E013" and fragment in m.msg for m in found), found
    assert all(m.hint for m in found)


def test_bad_option_values_are_reported_per_queue() -> None:
    found = meepo_messages(**tasks_setting(("default",), LEASE_TIMEOUT=-1))
    assert any(m.id == "meepo.E003" and "'default'" in m.msg and "LEASE_TIMEOUT" in m.msg for m in found), found


def test_a_queue_named_like_another_task_is_a_clash() -> None:
    found = meepo_messages(**tasks_setting(("default", "record")))
    assert any(m.id == "meepo.E006" and "'record'" in m.msg for m in found), found


def test_the_backend_reports_itself_through_check() -> None:
    with override_settings(TASKS=tasks_setting(("default",), COLOUR=1)):
        assert [m.id for m in task_backends["default"].check()] == ["meepo.E013"]


def test_a_backend_without_django_meepo_installed_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.apps import apps

    backend = task_backends["default"]
    assert "meepo.E010" not in [m.id for m in backend.check()]
    installed = apps.is_installed
    monkeypatch.setattr(apps, "is_installed", lambda name: name != "django_meepo" and installed(name))
    found = [m for m in backend.check() if m.id == "meepo.E010"]
    assert len(found) == 1, backend.check()
    assert found[0].level == checks.ERROR
    assert "'default'" in found[0].msg and "INSTALLED_APPS" in found[0].msg
    assert found[0].hint == "Add 'django_meepo' to INSTALLED_APPS."


def test_meepo_consume_refuses_an_unknown_queue() -> None:
    with pytest.raises(CommandError, match="unknown task 'nope'"):
        call_command("meepo_consume", "nope")
