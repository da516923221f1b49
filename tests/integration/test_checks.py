"""System checks and command-line errors: each misconfiguration is named, with an id and a hint."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.test import override_settings

from django_meepo.checks import check_settings


def ids_for(meepo: object, **other: object) -> dict[str, str]:
    with override_settings(MEEPO=meepo, **other):
        return {m.id: m.msg for m in check_settings()}


def with_task(**entry: object) -> dict[str, object]:
    return {**settings.MEEPO, "TASKS": {**settings.MEEPO["TASKS"], "extra": entry}}


def test_the_test_project_is_clean() -> None:
    assert check_settings() == []


@pytest.mark.parametrize(
    ("meepo", "check_id", "fragment"),
    [
        (["not", "a", "dict"], "meepo.E001", "MEEPO must be a dict"),
        ({"TASKZ": {}}, "meepo.E001", "unknown key 'TASKZ'"),
        ({"MAX_PAYLOAD_BYTES": -1}, "meepo.E001", "MAX_PAYLOAD_BYTES"),
        ({"KEY_PREFIX": "a b"}, "meepo.E001", "KEY_PREFIX"),
        ({"DATABASE": "elsewhere"}, "meepo.E005", "'elsewhere', which is not in DATABASES"),
        ({"REDIS": "nocache"}, "meepo.E007", "'nocache', which is not in CACHES"),
        ({"DEFAULTS": {"PARALLEL": 0}}, "meepo.E003", "PARALLEL must be an integer >= 1"),
        ({"WORKER_ALIVE_TTL": 0.5}, "meepo.E001", "WORKER_ALIVE_TTL"),
        ({"WORKER_ALIVE_TTL": "5"}, "meepo.E001", "WORKER_ALIVE_TTL"),
        ({"AUTODISCOVER": "jobs"}, "meepo.E001", "AUTODISCOVER"),
        ({"AUTODISCOVER": ["jobs", 3]}, "meepo.E001", "AUTODISCOVER"),
    ],
)
def test_global_problems(meepo, check_id, fragment) -> None:  # type: ignore[no-untyped-def]
    found = ids_for({**settings.MEEPO, **meepo} if isinstance(meepo, dict) else meepo)
    assert check_id in found and fragment in found[check_id], found


@pytest.mark.parametrize(
    ("entry", "check_id", "fragment"),
    [
        ({"FUNCTION": "testproject.jobs.demo", "PARALLEL": -2}, "meepo.E003", "PARALLEL must be an integer >= 1"),
        ({"FUNCTION": "testproject.jobs.demo", "ZOMBIE_STATUS": "gone"}, "meepo.E003", "ZOMBIE_STATUS must be one of"),
        ({"FUNCTION": "testproject.jobs.demo", "LEASE_TIMEOUT": 5, "HEARTBEAT": 10}, "meepo.E003",
         "HEARTBEAT (10) must be shorter than LEASE_TIMEOUT (5)"),
        ({"FUNCTION": "testproject.jobs.demo", "SPEED": "max"}, "meepo.E003", "unknown option 'SPEED'"),
        ({"FUNCTION": "testproject.jobs.nope"}, "meepo.E004", "does not import"),
        ({"FUNCTION": "tests.support.fails_on_import.job"}, "meepo.E004",
         "does not import (RuntimeError: this module fails on import on purpose)"),
        ({"FUNCTION": "testproject.jobs.FAST"}, "meepo.E004", "is not callable"),
        ({"PARALLEL": 2}, "meepo.E004", "has no FUNCTION"),
    ],
)
def test_task_problems(entry, check_id, fragment) -> None:  # type: ignore[no-untyped-def]
    found = ids_for(with_task(**entry))
    assert check_id in found and fragment in found[check_id], found


def test_a_task_declared_twice() -> None:
    meepo = {**settings.MEEPO, "TASKS": {**settings.MEEPO["TASKS"], "record": {"FUNCTION": "testproject.jobs.demo"}}}
    found = ids_for(meepo)
    assert "meepo.E006" in found and "declared twice" in found["meepo.E006"]


def test_settings_may_tune_a_decorated_task_without_redeclaring_it() -> None:
    from django_meepo.registry import get_task

    meepo = {**settings.MEEPO, "TASKS": {**settings.MEEPO["TASKS"], "record": {"PARALLEL": 9}}}
    with override_settings(MEEPO=meepo):
        assert check_settings() == []
        assert get_task("record").options.parallel == 9


def test_a_bad_task_name_in_settings() -> None:
    meepo = {**settings.MEEPO, "TASKS": {"has space": {"FUNCTION": "testproject.jobs.demo"}}}
    found = ids_for(meepo)
    assert "meepo.E002" in found


def test_sharing_the_default_cache_is_a_warning() -> None:
    caches = {"default": settings.CACHES["meepo"]}
    found = ids_for({**settings.MEEPO, "REDIS": "default"}, CACHES=caches)
    assert "meepo.W001" in found


def test_manage_py_check_fails_with_the_id() -> None:
    with override_settings(MEEPO=with_task(FUNCTION="testproject.jobs.demo", PARALLEL=0)), \
            pytest.raises(SystemCheckError, match=r"meepo\.E003"):
        call_command("check")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["nosuchtask"], "unknown task 'nosuchtask'"),
        (["record", "--parallel", "0"], "--parallel"),
        (["record", "--max-jobs", "-1"], "--max-jobs"),
        (["record", "--grace", "-1"], "--grace must be >= 0"),
    ],
)
def test_consume_refuses_bad_arguments(args, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match=fragment):
        call_command("meepo_consume", *args)


@pytest.mark.django_db
def test_sweep_refuses_an_unknown_task() -> None:
    with pytest.raises(CommandError, match="unknown task 'ghost'"):
        call_command("meepo_sweep", "ghost", "--once")


@pytest.mark.django_db
def test_a_payload_limit_the_server_packet_cannot_carry_is_reported() -> None:
    from django.db import connection

    from django_meepo.checks import check_packet_size

    if connection.vendor != "mysql":
        pytest.skip("max_allowed_packet is MySQL's and MariaDB's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@max_allowed_packet")
        packet = int(cursor.fetchone()[0])
    assert check_packet_size(databases=["default"]) == [], "the test project's limit fits"
    too_big = packet // 2  # escaped, it may need up to twice that, plus the rest of the INSERT
    with override_settings(MEEPO={**settings.MEEPO, "MAX_PAYLOAD_BYTES": too_big}):
        [warning] = check_packet_size(databases=["default"])
        assert check_packet_size() == [], "a database check runs only when asked to (migrate, check --database)"
    assert warning.id == "meepo.W003" and f"max_allowed_packet is {packet}" in warning.msg


def test_a_redis_cache_without_socket_timeouts_is_warned_about() -> None:
    caches = {**settings.CACHES, "meepo": {**settings.CACHES["meepo"], "OPTIONS": {"SOCKET_TIMEOUT": 5}}}
    found = ids_for(settings.MEEPO, CACHES=caches)
    assert "meepo.W004" in found and "no SOCKET_CONNECT_TIMEOUT" in found["meepo.W004"], found
    assert "meepo.W004" not in ids_for({**settings.MEEPO, "DISPATCH": "database"}, CACHES=caches), "no Redis, no W004"


def _hints(meepo: object, **other: object) -> list[str]:
    with override_settings(MEEPO=meepo, **other):
        return [m.hint or "" for m in check_settings()]


def test_check_hints_cite_links_not_docs_files_the_wheel_does_not_ship() -> None:
    """The wheel has no docs/ folder: a hint names a URL of the hosted docs or a README section."""
    from django_meepo.admin.checks import check_admin_actions

    hints = _hints(["not", "a", "dict"]) + _hints({"DEFAULTS": {"PARALLEL": 0}})
    hints += _hints(with_task(FUNCTION="testproject.jobs.demo", PARALLEL=0))
    redis = {**settings.CACHES["meepo"], "OPTIONS": {}}
    hints += _hints(settings.MEEPO, CACHES={**settings.CACHES, "meepo": redis})
    with override_settings(INSTALLED_APPS=[a for a in settings.INSTALLED_APPS if a != "admin_actions"]):
        hints += [m.hint or "" for m in check_admin_actions()]
    assert len([h for h in hints if h]) >= 5
    cited = [h for h in hints if ".md" in h]
    assert cited, hints
    for hint in cited:
        outside_urls = re.sub(r"https?://\S+", "", hint)
        assert "docs/" not in outside_urls, hint
        assert re.sub(r"README\.md#[a-z-]+", "", outside_urls).count(".md") == 0, hint


def test_doc_link_uses_the_hosted_docs_when_the_project_names_them() -> None:
    from django_meepo.doclinks import doc_link

    assert doc_link("reference.md", "settings-meepo", "use-it", base="https://example.org/docs") == \
        "https://example.org/docs/reference.md#settings-meepo"
    assert doc_link("reference.md", "settings-meepo", "use-it", base=None) == "README.md#use-it"
