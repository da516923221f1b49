"""Bad input to ``python -m bench.chaos`` is a clear error and exit code 2, before anything starts."""

from __future__ import annotations

import random

import pytest

from bench.chaos import cli, faults


def error_of(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1", "-0.5", "nan", "inf", "soon"])
def test_minutes_must_be_a_positive_number(capsys: pytest.CaptureFixture[str], value: str) -> None:
    err = error_of(capsys, ["--minutes", value])
    assert "--minutes must be" in err and repr(value) in err


def test_minutes_are_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--minutes" in error_of(capsys, [])


def test_an_unknown_fault_is_named_with_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    err = error_of(capsys, ["--minutes", "1", "--faults", "flushall,bogus,worker_sigkill,nope"])
    assert "unknown fault(s) 'bogus', 'nope'" in err
    assert "known: " in err and "redis_stop_15s" in err


def test_an_empty_fault_list_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert "names no fault" in error_of(capsys, ["--minutes", "1", "--faults", " , "])


@pytest.mark.parametrize(("args", "message"), [
    (["--dispatch", "kafka"], "invalid choice: 'kafka'"),
    (["--seed", "x"], "--seed must be a whole number"),
    (["--seed", "-3"], "--seed must be 0 or more"),
    (["--database-url", "postgres://localhost/x"], "runs on MariaDB/MySQL"),
    (["--topology", "cluster9"], "invalid choice: 'cluster9'"),
    (["--topology", "sentinel", "--dispatch", "database"], "--topology sentinel needs Redis"),
    (["--faults", "sentinel_failover"], "'sentinel_failover' do not apply to --topology standalone (they need "
                                        "sentinel)"),
    (["--topology", "sentinel", "--faults", "flushall,poison"], "'flushall' do not apply to --topology sentinel"),
    (["--topology", "cluster", "--dispatch", "database"], "--topology cluster needs Redis"),
    (["--faults", "cluster_failover"], "'cluster_failover' do not apply to --topology standalone (they need "
                                       "cluster)"),
])
def test_other_bad_arguments(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert message in error_of(capsys, ["--minutes", "1", *args])


def test_the_database_dispatcher_leaves_out_the_redis_faults_by_default() -> None:
    assert set(faults.names("failover")) == set(faults.REGISTRY) - {"sentinel_failover", "cluster_failover",
                                                                    "cluster_slot_migration"}
    assert set(faults.names("database")) == {n for n, f in faults.REGISTRY.items() if not f.redis}
    assert faults.parse("flushall, flushall,poison") == ["flushall", "poison"]


def test_each_topology_gets_its_own_redis_faults_and_the_others() -> None:
    standalone_only = {"flushall", "redis_kill9_restart_empty", "redis_stop_15s", "redis_debug_sleep"}
    cluster_only = {"cluster_failover", "cluster_slot_migration"}
    anywhere = set(faults.REGISTRY) - standalone_only - {"sentinel_failover"} - cluster_only
    assert set(faults.names("failover", "sentinel")) == anywhere | {"sentinel_failover"}
    assert set(faults.names("failover", "cluster")) == anywhere | cluster_only
    assert set(faults.names("redis", "standalone")) == anywhere | standalone_only
    assert faults.parse("sentinel_failover,poison", "sentinel") == ["sentinel_failover", "poison"]
    assert faults.parse("cluster_slot_migration", "cluster") == ["cluster_slot_migration"]


def test_the_plan_fires_every_chosen_fault_and_the_stop_scales_down() -> None:
    chosen = faults.names("failover")
    slots = faults.plan(chosen, 42, random.Random(1))
    assert {s.name for s in slots} == set(chosen)
    assert slots == faults.plan(chosen, 42, random.Random(1)), "the same seed, the same plan"
    assert len(faults.plan(chosen, 1800, random.Random(1))) == 300
    assert faults.redis_stop_seconds(42) == 7 and faults.redis_stop_seconds(1800) == 15
    assert faults.redis_stop_seconds(6) == 3


def test_every_fault_is_documented() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    for name, spec in faults.REGISTRY.items():
        assert f"| `{name}` |" in page, f"docs/reliability.md has no row for the fault {name}"
        assert spec.doc, f"the fault {name} has no docstring"
