"""MEEPO["DISPATCH"] and MEEPO["POLL_INTERVAL"]: what the system checks say, and which dispatcher one gets."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from django_meepo.checks import check_redis, check_settings
from django_meepo.dispatch import new_dispatcher
from django_meepo.dispatch.database import DatabaseDispatcher
from django_meepo.dispatch.failover import FailoverDispatcher
from django_meepo.dispatch.redis import RedisDispatcher


def ids(**meepo: Any) -> list[str]:
    with override_settings(MEEPO={**settings.MEEPO, **meepo}):
        return [m.id for m in check_settings()]


@pytest.mark.parametrize("value", ["kafka", "", None, 1])
def test_an_unknown_dispatcher_is_e001(value: object) -> None:
    assert "meepo.E001" in ids(DISPATCH=value)


@pytest.mark.parametrize("value", [0, -1, 61, "1", True, float("nan")])
def test_a_bad_poll_interval_is_e001(value: object) -> None:
    assert "meepo.E001" in ids(POLL_INTERVAL=value)


def test_the_database_dispatcher_needs_no_redis_alias() -> None:
    assert ids(DISPATCH="database", REDIS="nowhere", POLL_INTERVAL=0.2) == []
    assert "meepo.E007" in ids(DISPATCH="redis", REDIS="nowhere")


def test_the_redis_policy_check_is_skipped_without_redis() -> None:
    with override_settings(MEEPO={**settings.MEEPO, "DISPATCH": "database", "REDIS": "nowhere"}):
        assert check_redis() == []


def test_which_dispatcher_each_setting_gives() -> None:
    with override_settings(MEEPO={**settings.MEEPO, "DISPATCH": "database", "POLL_INTERVAL": 0.2}):
        dispatcher = new_dispatcher()
        assert isinstance(dispatcher, DatabaseDispatcher) and dispatcher.poll_interval == 0.2
        assert not dispatcher.redispatches
    with override_settings(MEEPO={**settings.MEEPO, "DISPATCH": "redis"}):
        dispatcher = new_dispatcher()
        assert isinstance(dispatcher, FailoverDispatcher)
        assert isinstance(dispatcher.primary, RedisDispatcher)
        assert isinstance(dispatcher.fallback, DatabaseDispatcher)
