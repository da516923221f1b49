"""The Redis key layout (every key of a task under its hash tag, so one Cluster slot per task) and
``MEEPO["REDIS_CLUSTER"]`` (parsed into ``RedisCluster`` arguments; a bad value is meepo.E014 naming what is
wrong). No Redis needed."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from redis.crc import key_slot

from django_meepo.checks import check_settings
from django_meepo.dispatch import cluster, redis_client
from django_meepo.dispatch import redis_keys as keys
from django_meepo.dispatch.base import Source
from django_meepo.dispatch.redis import slot_groups
from django_meepo.exceptions import ConfigurationError


def every_key(prefix: str, task: str) -> list[str]:
    return [*keys.queue_keys(prefix, task), keys.sequence_key(prefix, task), keys.dispatched_key(prefix, task),
            keys.inflight_key(prefix, task, "host:1:ab"), keys.inflight_set_key(prefix, task),
            keys.alive_key(prefix, task, "host:1:ab"), keys.epoch_key(prefix, task), keys.rate_key(prefix, task),
            keys.rate_key(prefix, task) + ":customer-7"]


@pytest.mark.parametrize("prefix,task", [("meepo", "record"), ("app", "emails.send"), ("x", "a:b")])
def test_every_key_of_a_task_hashes_to_the_slot_of_its_tag(prefix: str, task: str) -> None:
    names = every_key(prefix, task)
    assert all(name.startswith(f"{{{prefix}:{task}}}:") for name in names)
    assert {key_slot(name.encode()) for name in names} == {key_slot(f"{prefix}:{task}".encode())}
    assert len(set(names)) == len(names)


def test_tasks_spread_over_slots_and_a_pop_is_grouped_per_slot() -> None:
    tasks = [f"task{i}" for i in range(40)]
    assert len({key_slot(keys.tag("meepo", t).encode()) for t in tasks}) > 30
    sources = [Source(t, "meepo", 10.0) for t in tasks]
    groups = slot_groups(sources, cluster=True)
    assert sorted(s.task for g in groups for s in g) == sorted(tasks)
    assert all(len({key_slot(keys.tag(s.key_prefix, s.task).encode()) for s in g}) == 1 for g in groups)
    assert slot_groups(sources, cluster=False) == [sources], "standalone: one call, as before"


def test_the_untagged_layout_of_before_is_named_for_the_upgrade() -> None:
    assert keys.untagged_queue_keys("meepo", "t") == ["meepo:t:q:hi", "meepo:t:q:2", "meepo:t:q:lo"]
    assert keys.legacy_keys("meepo", "t") == ["meepo:t:q:0", "meepo:t:q:1", "meepo:t:q:3", "meepo:t:q:4"]
    assert keys.untagged_keys("meepo", "t")["dispatched"] == "meepo:t:dispatched"
    assert keys.untagged_alive_key("meepo", "w") == "meepo:alive:w"


@pytest.mark.parametrize("value,nodes,extra", [
    ("redis://10.0.0.1:7000", [("10.0.0.1", 7000)], {}),
    (["10.0.0.1:7000", "redis://h2:7001/0"], [("10.0.0.1", 7000), ("h2", 7001)], {}),
    ({"NODES": ["rediss://h:7000"], "OPTIONS": {"SOCKET_TIMEOUT": 1, "PASSWORD": "pw"}}, [("h", 7000)],
     {"socket_timeout": 1, "password": "pw", "ssl": True}),
])
def test_good_cluster_settings_parse(value: Any, nodes: list[tuple[str, int]], extra: dict[str, Any]) -> None:
    parsed, kwargs = cluster.parse(value)
    assert parsed == nodes
    assert kwargs == {"socket_connect_timeout": 2, "socket_timeout": 5, **extra}


@pytest.mark.parametrize("value,fragment", [
    ([], "at least one startup node"),
    ("", "at least one startup node"),
    (7000, "at least one startup node"),
    (["redis://h"], "must name a host and a port"),
    (["http://h:7000"], "scheme must be redis://"),
    (["redis://h:7000/3"], "only database 0"),
    ([None], "has a node that is not a string"),
    ({"NODES": ["h:1"], "TIMEOUT": 2}, "unknown key(s) 'TIMEOUT'"),
    ({"NODES": ["h:1"], "OPTIONS": {"DB": 1}}, "OPTIONS has unknown key(s) 'DB'"),
    ({"NODES": ["h:1"], "OPTIONS": {"SOCKET_TIMEOUT": 0}}, "SOCKET_TIMEOUT"),
    ({"NODES": ["h:1"], "OPTIONS": []}, "OPTIONS must be a dict"),
])
def test_a_bad_cluster_setting_is_e014_naming_what_is_wrong(value: Any, fragment: str) -> None:
    with override_settings(MEEPO={**settings.MEEPO, "REDIS_CLUSTER": value}):
        errors = [m for m in check_settings() if m.id == "meepo.E014"]
        assert len(errors) == 1 and fragment in errors[0].msg, [e.msg for e in errors]
        with pytest.raises(ConfigurationError, match="REDIS_CLUSTER"):
            redis_client()


def test_with_a_cluster_the_redis_alias_is_not_needed() -> None:
    meepo = {**settings.MEEPO, "REDIS_CLUSTER": ["127.0.0.1:7000"], "REDIS": "nowhere"}
    with override_settings(MEEPO=meepo):
        assert not [m for m in check_settings() if m.id in ("meepo.E007", "meepo.E014")]
