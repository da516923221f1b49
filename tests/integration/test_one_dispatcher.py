"""A worker process holds one dispatcher: its fetches, its sweeper and the outbox share it (and its breaker)."""

from __future__ import annotations

import os

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


def test_a_second_worker_alive_in_the_process_fetches_through_a_dispatcher_of_its_own() -> None:
    """Fetch state (the subscription, the turn) is one worker's: two workers running in one process at once must
    not share it; the first one's goes back to the process when it stops."""
    with running_worker("record") as first, running_worker("record") as second:
        assert first.dispatcher is process_dispatcher()
        assert second.dispatcher is not first.dispatcher
    with running_worker("record") as third:
        assert third.dispatcher is process_dispatcher(), "the first worker gave the process's dispatcher back"


def test_a_forked_child_does_not_inherit_the_parents_dispatcher() -> None:
    parent = process_dispatcher()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it got a fresh dispatcher, then leave without cleanup
        try:
            os.write(write, b"fresh" if process_dispatcher() is not parent else b"inherited")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 100)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"fresh"
