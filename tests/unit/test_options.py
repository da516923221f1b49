"""Task options, task names and the registry's problems, without services."""

from __future__ import annotations

import pytest

from django_meepo.options import DEFAULTS, build_options, option_errors, task_name_error
from django_meepo.retry import backoff_seconds, is_final_failure


def test_defaults_follow_the_design() -> None:
    options = build_options()
    assert (options.lease_timeout, options.heartbeat, options.sweep_period) == (30.0, 10.0, 5.0)
    assert options.zombie_status == "todo"
    assert options.max_failed_times == 3
    assert options.auto_commit is True


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"parallel": 0}, "PARALLEL must be an integer >= 1"),
        ({"parallel": True}, "PARALLEL must be an integer >= 1"),
        ({"max_failed_times": -1}, "MAX_FAILED_TIMES must be an integer >= 0"),
        ({"zombie_status": "doing"}, "ZOMBIE_STATUS must be one of todo, failed, done, zombie"),
        ({"lease_timeout": -5}, "LEASE_TIMEOUT must be a number of seconds > 0"),
        ({"lease_timeout": float("inf")}, "LEASE_TIMEOUT must be a number of seconds > 0"),
        ({"sweep_limit": 0}, "SWEEP_LIMIT must be an integer >= 1"),
        ({"auto_commit": "yes"}, "AUTO_COMMIT must be True or False"),
        ({"time_limit": 0}, "TIME_LIMIT must be a number of seconds > 0"),
        ({"key_prefix": "has space"}, "KEY_PREFIX must be a non-empty string without spaces"),
        ({"colour": "red"}, "unknown option 'COLOUR'"),
        ({"heartbeat": 30, "lease_timeout": 30}, "HEARTBEAT (30) must be shorter than LEASE_TIMEOUT (30)"),
    ],
)
def test_bad_options_are_named(values: dict, fragment: str) -> None:
    errors = option_errors(values)
    assert any(fragment in e for e in errors), errors
    with pytest.raises(ValueError, match=r"must|unknown"):
        build_options(values)


def test_every_default_is_valid() -> None:
    assert option_errors(DEFAULTS) == []


@pytest.mark.parametrize("name", ["", "a b", "a:b", "{x}", "x" * 101, None, 3])
def test_bad_task_names(name: object) -> None:
    assert task_name_error(name)


def test_good_task_name() -> None:
    assert task_name_error("emails.send-v2") is None


def test_nth_failure_is_final_as_in_meepo() -> None:
    options = build_options({"max_failed_times": 3})
    assert [is_final_failure(n, options) for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert not is_final_failure(1000, build_options({"max_failed_times": 0}))


def test_backoff_grows_exponentially_and_is_capped() -> None:
    options = build_options({"retry_backoff": 2, "retry_backoff_max": 10, "retry_jitter": False})
    assert [backoff_seconds(n, options) for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]


def test_backoff_jitter_stays_within_half_and_whole() -> None:
    options = build_options({"retry_backoff": 4, "retry_jitter": True})
    for _ in range(50):
        assert 8 <= backoff_seconds(3, options) <= 16
