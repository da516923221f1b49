"""A worker process holds one dispatcher: its fetches, its sweeper and the outbox share it (and its breaker)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from django_meepo import outbox
from django_meepo.dispatch import process_dispatcher
from django_meepo.dispatch.failover import FailoverDispatcher
from tests.support.inprocess import running_worker
from tests.support.services import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_its_sweeper_and_the_outbox_share_one_dispatcher() -> None:
    with running_worker("record") as worker:
        wait_until(lambda: worker.sweeper is not None, timeout=30, message="the worker's sweeper")
        assert worker.sweeper is not None
        assert isinstance(worker.dispatcher, FailoverDispatcher)
        assert worker.sweeper.dispatcher is worker.dispatcher
        assert outbox._dispatcher() is worker.dispatcher
        assert process_dispatcher() is worker.dispatcher


def test_the_database_dispatcher_is_shared_too() -> None:
    with override_settings(MEEPO={**settings.MEEPO, "DISPATCH": "database"}), running_worker("record") as worker:
        wait_until(lambda: worker.sweeper is not None, timeout=30, message="the worker's sweeper")
        assert worker.sweeper is not None
        assert worker.sweeper.dispatcher is worker.dispatcher is process_dispatcher()
        assert outbox._dispatcher() is None, "nothing to dispatch: workers claim from the table"
