"""The one settings table (django_meepo/spec): conf, options, checks and docs/reference.md all read from it."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from django_meepo.checks import check_settings
from django_meepo.conf import GLOBAL_KEYS, MeepoSettings, get_settings
from django_meepo.options import DEFAULTS, OPTION_NAMES, TaskOptions
from django_meepo.spec import OPTIONS, SETTINGS
from django_meepo.spec.__main__ import main
from django_meepo.spec.docs import COMMAND, blocks, found_blocks, rewrite

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"


def test_reference_md_tables_are_what_the_spec_prints() -> None:
    found = found_blocks(REFERENCE.read_text(encoding="utf-8"))
    for name, block in blocks().items():
        assert found[name] == block, (
            f"docs/reference.md's {name} table differs from django_meepo/spec: run `{COMMAND}` "
            f"(from the repository root) and commit the result")


def test_the_typed_objects_have_one_attribute_per_spec_entry() -> None:
    assert [f.name for f in fields(MeepoSettings)] == [s.attr for s in SETTINGS.values()]
    assert [f.name for f in fields(TaskOptions)] == list(OPTIONS)
    assert set(SETTINGS) == GLOBAL_KEYS
    assert frozenset(OPTIONS) == OPTION_NAMES
    assert {o.name: o.default for o in OPTIONS.values()} == DEFAULTS


def test_every_default_passes_its_own_validator() -> None:
    assert {s.key: s.validate(s.default) for s in SETTINGS.values()} == dict.fromkeys(SETTINGS)
    assert {o.name: o.validate(o.default) for o in OPTIONS.values()} == dict.fromkeys(OPTIONS)


def test_an_empty_meepo_gives_the_spec_defaults() -> None:
    with override_settings(MEEPO={}):
        conf = get_settings()
    assert conf == MeepoSettings()
    assert (conf.max_payload_bytes, conf.max_result_bytes, conf.max_error_bytes) == (1_048_576, 1_048_576, 65_536)
    assert conf.autodiscover == ("jobs",) and conf.defaults == {} and conf.tasks == {}
    assert MeepoSettings().defaults is not MeepoSettings().defaults, "no two objects share a default dict"


def test_result_and_error_limits_are_read() -> None:
    with override_settings(MEEPO={**settings.MEEPO, "MAX_RESULT_BYTES": 10, "MAX_ERROR_BYTES": 20}):
        assert check_settings() == []
        assert (get_settings().max_result_bytes, get_settings().max_error_bytes) == (10, 20)


@pytest.mark.parametrize("key", ["MAX_RESULT_BYTES", "MAX_ERROR_BYTES"])
@pytest.mark.parametrize("value", [0, -1, True, "100", 1.5, None])
def test_result_and_error_limits_must_be_positive_integers(key: str, value: Any) -> None:
    with override_settings(MEEPO={**settings.MEEPO, key: value}):
        found = {m.id: m.msg for m in check_settings()}
    assert found.get("meepo.E001") == f"MEEPO[{key!r}] must be an integer >= 1, not {value!r}", found


def test_the_generator_prints_and_rewrites_only_its_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--markdown"]) == 0
    assert capsys.readouterr().out == "\n\n".join(blocks().values()) + "\n"
    page = "# Title\n\nbefore\n\n{settings}\n\nbetween\n\n{options}\n\nafter\n"
    stale = page.format(settings=blocks()["settings"].replace("`DATABASE`", "`OLD`"),
                        options=blocks()["options"].replace("SetParallelNum", "x"))
    path = tmp_path / "reference.md"
    path.write_text(stale, encoding="utf-8")
    assert main(["--write", str(path)]) == 0
    text = path.read_text(encoding="utf-8")
    assert text == page.format(**blocks())
    assert rewrite(text) == text


def test_rewriting_a_file_without_the_markers_says_which_is_missing() -> None:
    with pytest.raises(ValueError, match="expected one 'settings' block"):
        rewrite("# Reference\n\nno markers here\n")


@pytest.mark.parametrize(("key", "value", "check_id"), [("TASKS", [1], "meepo.E002"), ("DEFAULTS", "x", "meepo.E003")])
def test_a_container_setting_of_the_wrong_type_is_reported_not_raised(key: str, value: Any, check_id: str) -> None:
    with override_settings(MEEPO={**settings.MEEPO, key: value}):
        found = {m.id: m.msg for m in check_settings()}
        conf = get_settings()
    assert (conf.tasks if key == "TASKS" else conf.defaults) == {}
    assert found.get(check_id, "").startswith(f"MEEPO[{key!r}] must be a dict of"), found
