"""Redis entries are parsed strictly: anything but "<id>:<cid>" with positive integers is dropped."""

from __future__ import annotations

import pytest

from django_meepo.dispatch.redis import band_of, decode, encode
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


def test_priority_bands_order_high_first() -> None:
    assert [band_of(p) for p in (100, 50, 49, 1, 0, -1, -49, -50, -100)] == [0, 0, 1, 1, 2, 3, 3, 4, 4]
