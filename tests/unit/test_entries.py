"""Redis entries are parsed strictly: anything but "<id>:<cid>" with positive integers is dropped."""

from __future__ import annotations

import pytest

from django_meepo.dispatch.redis import DEFAULT, HI, LO, decode, encode, queue_of
from django_meepo.statemachine import Ref


def test_round_trip() -> None:
    assert decode(encode(Ref(42, 7)).encode()) == Ref(42, 7)


@pytest.mark.parametrize(
    "raw",
    [b"", b"42", b"42:", b":7", b"42:7:1", b"-1:2", b"0:1", b"1:0", b"4 2:7", b"\xff\xfe", b"1e3:2",
     b"42:7\n", b"99999999999999999999:1", b"__import__('os'):1", b"\x80\x04\x95"],
)
def test_malformed_entries_are_refused(raw: bytes) -> None:
    assert decode(raw) is None


def test_priorities_above_zero_go_high_zero_to_the_list_below_low() -> None:
    assert [queue_of(p) for p in (100, 50, 1, 0, -1, -50, -100)] == [HI, HI, HI, DEFAULT, LO, LO, LO]
