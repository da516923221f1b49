"""Text the worker stores is storable on every database: no NUL, no lone surrogate, a bounded size."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from django_meepo import text
from django_meepo.execution import DONE, FAILED, RunOutcome


def test_clean_removes_nul_and_leaves_ordinary_text_alone() -> None:
    assert text.clean("a\x00b\x00") == "ab"
    assert text.clean("plain") == "plain"
    assert text.clean("ünïcødé 🚀") == "ünïcødé 🚀"


def test_clean_turns_lone_surrogates_into_visible_escapes_that_encode() -> None:
    cleaned = text.clean("a\ud800b\udfffc")
    assert cleaned == "a\\ud800b\\udfffc"
    cleaned.encode("utf-8")  # does not raise


def test_a_lone_surrogate_in_json_text_reads_back_as_the_same_value() -> None:
    stored = text.clean(json.dumps({"k": "x\ud800"}, ensure_ascii=False))
    stored.encode("utf-8")
    assert json.loads(stored) == {"k": "x\ud800"}


@pytest.mark.parametrize("value", ["a" * 1000, "é" * 1000, "🚀" * 1000, "ab🚀" * 400])
def test_cut_head_keeps_the_head_within_the_byte_limit_and_says_how_much_was_cut(value: str) -> None:
    cut = text.cut_head(value, 300)
    size = len(cut.encode("utf-8"))
    assert size <= 300
    head, marker = cut.rsplit("\n", 1)
    assert value.startswith(head) and head
    removed = len(value.encode("utf-8")) - len(head.encode("utf-8"))
    assert marker == f"[… {removed} bytes cut by django-meepo: over MAX_RESULT_BYTES]"


@pytest.mark.parametrize("value", ["a" * 1000, "é" * 1000, "🚀" * 1000])
def test_cut_tail_keeps_the_tail_within_the_byte_limit(value: str) -> None:
    cut = text.cut_tail(value, 300)
    assert len(cut.encode("utf-8")) <= 300
    marker, tail = cut.split("\n", 1)
    assert value.endswith(tail) and tail
    removed = len(value.encode("utf-8")) - len(tail.encode("utf-8"))
    assert marker == f"[… {removed} bytes cut by django-meepo: over MAX_ERROR_BYTES]"


def test_text_within_the_limit_is_not_cut() -> None:
    assert text.cut_head("é" * 150, 300) == "é" * 150  # exactly 300 bytes
    assert text.cut_tail("x" * 300, 300) == "x" * 300


def test_a_limit_smaller_than_the_marker_still_holds() -> None:
    assert text.cut_head("é" * 100, 9) == "é" * 4
    assert text.cut_tail("é" * 100, 9) == "é" * 4


def test_limits_default_to_one_mib_and_64_kib() -> None:
    assert text.max_result_bytes() == 1_048_576
    assert text.max_error_bytes() == 65_536
    assert len(text.result_text("x" * 2_000_000).encode()) <= 1_048_576
    assert len(text.error_text("x" * 100_000).encode()) <= 65_536


def test_limits_follow_the_settings() -> None:
    with override_settings(MEEPO={"MAX_RESULT_BYTES": 500, "MAX_ERROR_BYTES": 400}):
        if not hasattr(text.get_settings(), "max_result_bytes"):
            pytest.skip("MAX_RESULT_BYTES / MAX_ERROR_BYTES are not in the settings module yet")
        assert len(text.result_text("x" * 1000).encode()) <= 500
        assert len(text.error_text("x" * 1000).encode()) <= 400


def test_an_outcome_is_made_storable_when_it_is_built() -> None:
    done = RunOutcome(DONE, result="r\x00\ud800" + "x" * 2_000_000)
    assert done.result is not None and done.result.startswith("r\\ud800x")
    assert len(done.result.encode("utf-8")) <= 1_048_576
    failed = RunOutcome(FAILED, error="Traceback\x00 …\n" + "y" * 100_000 + "\nValueError: bad \udcff",
                        error_class="builtins.\ud800Error")
    assert failed.error.endswith("ValueError: bad \\udcff") and "\x00" not in failed.error
    assert len(failed.error.encode("utf-8")) <= 65_536
    assert failed.error_class == "builtins.\\ud800Error"
    assert RunOutcome(DONE).result is None
