from __future__ import annotations

import os

from django.apps import AppConfig


class TestprojectConfig(AppConfig):
    name = "testproject"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        fault = os.environ.get("MEEPO_TEST_FAULT", "")
        if fault == "die_after_pop":
            install_die_after_pop()
        elif fault:
            from . import faults

            faults.install(fault)


def install_die_after_pop() -> None:
    """Fault injection for the acceptance tests: the worker process dies right after its first non-empty pop,
    before it claims what it popped (the pop→claim gap)."""
    from django_meepo.dispatch.redis import RedisDispatcher

    original = RedisDispatcher.pop

    def pop(self, sources, count, worker, limits=None):  # type: ignore[no-untyped-def]
        popped = original(self, sources, count, worker, limits)
        if popped:
            os._exit(9)
        return popped

    RedisDispatcher.pop = pop  # type: ignore[method-assign]
