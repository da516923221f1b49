"""Task providers: tasks declared by code from elsewhere (the Django Tasks backend's queues)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_meepo import ConfigurationError, registry
from django_meepo.registry import ProvidedTask, get_task, problems, register_provider


def job(ctx: object) -> None:
    """A job function for provided tasks."""


PROVIDED: list[ProvidedTask] = []


def provide() -> list[ProvidedTask]:
    return list(PROVIDED)


@pytest.fixture(autouse=True)
def provider() -> Iterator[list[ProvidedTask]]:
    register_provider(provide)
    yield PROVIDED
    PROVIDED.clear()
    registry._providers.remove(provide)
    registry.clear_cache()


def test_a_provided_task_resolves_with_its_options(provider: list[ProvidedTask]) -> None:
    provider.append(ProvidedTask(name="provided_a", function=job, options={"PARALLEL": 7}, origin="a test"))
    registry.clear_cache()
    task = get_task("provided_a")
    assert (task.function, task.options.parallel, task.path) == (job, 7, f"{__name__}.job")


def test_registering_twice_is_a_no_op() -> None:
    register_provider(provide)
    assert registry._providers.count(provide) == 1


def test_a_clash_with_a_decorated_task_is_reported(provider: list[ProvidedTask]) -> None:
    provider.append(ProvidedTask(name="record", function=job, origin="a test"))
    registry.clear_cache()
    found = [p for p in problems() if p.task == "record"]
    assert [p.id for p in found] == ["meepo.E006"]
    assert "a test" in found[0].message
    with pytest.raises(ConfigurationError, match="declared twice"):
        get_task("record")  # ambiguous: refused until one of them is renamed


def test_a_bad_name_is_reported(provider: list[ProvidedTask]) -> None:
    provider.append(ProvidedTask(name="bad name", function=job, origin="a test"))
    registry.clear_cache()
    assert any(p.id == "meepo.E002" and "a test" in p.message for p in problems())


def test_settings_tuning_a_provided_task_keep_its_hooks(provider: list[ProvidedTask]) -> None:
    from django.conf import settings
    from django.test import override_settings

    def own_options(payload: bytes, options):  # type: ignore[no-untyped-def]
        return options

    def ended(ids: list[int], using: str) -> None:
        """A provider's on_finished hook."""

    provider.append(ProvidedTask(name="provided_h", function=job, origin="a test", job_options=own_options,
                                 on_finished=ended))
    meepo = {**settings.MEEPO, "TASKS": {**settings.MEEPO["TASKS"], "provided_h": {"TIME_LIMIT": 0.5}}}
    with override_settings(MEEPO=meepo):
        registry.clear_cache()
        task = get_task("provided_h")
        assert task.options.time_limit == 0.5
        assert (task.job_options, task.on_finished) == (own_options, ended), "tuning options dropped the hooks"
