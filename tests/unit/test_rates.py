"""Rate specs and the flow-limit options: parsing, and bad input refused with what was wrong."""

from __future__ import annotations

import pytest

from django_meepo.options import build_options
from django_meepo.rates import Rate, parse_rate, rate_problem


@pytest.mark.parametrize(("spec", "count", "period"), [
    ("100/s", 100, 1.0), ("10/m", 10, 60.0), ("500/h", 500, 3600.0), ("5/10s", 5, 10.0), (" 3 / 2.5 min ", 3, 150.0),
    ("1/d", 1, 86400.0), ("7/second", 7, 1.0),
])
def test_rates_parse(spec: str, count: int, period: float) -> None:
    rate = parse_rate(spec)
    assert rate == Rate(count, period)
    assert rate.per_second == pytest.approx(count / period)


@pytest.mark.parametrize("spec", ["fast", "", "10", "10/", "/s", "-1/s", "0/s", "10/0s", "10/fortnight", "1.5/s",
                                  "10 per second", 10, None, "2000000/s"])
def test_bad_rates_are_refused_naming_the_value(spec: object) -> None:
    assert rate_problem(spec) is not None
    with pytest.raises(ValueError, match=r"^rate .*not " + repr(spec).replace("(", r"\(").replace("[", r"\[")):
        parse_rate(spec)


@pytest.mark.parametrize(("options", "message"), [
    ({"rate": "fast"}, r"RATE must be \"<count>/<period>\" such as \"100/s\".*not 'fast'"),
    ({"key_rate": "0/s"}, r"KEY_RATE must allow from 1 to 1,000,000 jobs per period .*not '0/s'"),
    ({"concurrency": 0}, r"CONCURRENCY must be an integer >= 1, not 0"),
    ({"concurrency": -3}, r"CONCURRENCY must be an integer >= 1, not -3"),
    ({"key_concurrency": 0}, r"KEY_CONCURRENCY must be an integer >= 1, not 0"),
    ({"concurrency": True}, r"CONCURRENCY must be an integer >= 1, not True"),
])
def test_bad_flow_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_options(options)


def test_flow_options_say_whether_a_task_is_limited_and_keyed() -> None:
    assert not build_options().limited
    assert build_options({"concurrency": 2}).limited and not build_options({"concurrency": 2}).keyed
    assert build_options({"key_rate": "1/s"}).keyed and build_options({"key_concurrency": 1}).keyed
    assert build_options({"RATE": "10/m"}).limited
