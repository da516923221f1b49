"""PostgreSQL LISTEN/NOTIFY on the database dispatcher: an idle worker wakes at a push, not at its next poll."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings

from django_meepo import Job
from django_meepo.dispatch.pgnotify import channel_for
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
POLL = "30"  # far longer than any wait below: a pickup before it can only come from a notification
DB_ONLY = {"MEEPO_DISPATCH": "database", "MEEPO_POLL_INTERVAL": POLL, "REDIS_URL": "redis://127.0.0.1:1/0"}


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is a PostgreSQL capability")


def _listening(prefix: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE query = %s",
                       [f'LISTEN "{channel_for(prefix)}"'])
        return [row[0] for row in cursor.fetchall()]


def _idle_worker(workers) -> None:  # type: ignore[no-untyped-def]
    workers.consume("record", "--parallel", "1", **DB_ONLY)
    prefix = settings.MEEPO["KEY_PREFIX"]
    wait_until(lambda: bool(_listening(prefix)), timeout=60, interval=0.2, message="the worker LISTENs")
    time.sleep(1.5)  # past its first fetches: now it waits on the notification (or a 30 s poll)


def _push_and_expect_pickup() -> None:
    with override_settings(MEEPO={**settings.MEEPO, "DISPATCH": "database"}):
        job = Job.objects.push("record", json={})
    wait_until(lambda: Job.objects.get(id=job.id).status == "done", timeout=20, interval=0.1,
               message="the pushed job picked up well before the 30 s poll")


def test_an_idle_worker_wakes_at_a_push(workers) -> None:  # type: ignore[no-untyped-def]
    _idle_worker(workers)
    _push_and_expect_pickup()


def test_a_killed_listen_connection_reconnects(workers) -> None:  # type: ignore[no-untyped-def]
    _idle_worker(workers)
    prefix = settings.MEEPO["KEY_PREFIX"]
    old = _listening(prefix)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [old])
    wait_until(lambda: bool(set(_listening(prefix)) - set(old)), timeout=60, interval=0.2,
               message="the worker LISTENs again on a new connection")
    time.sleep(1.5)
    _push_and_expect_pickup()


def test_a_rolled_back_push_notifies_nothing() -> None:
    from django_meepo.dispatch.pgnotify import Listener

    prefix = settings.MEEPO["KEY_PREFIX"]
    listener = Listener(connection.get_connection_params(), [channel_for(prefix)], ["record"])
    try:
        wait_until(lambda: listener.connected, timeout=30, interval=0.1, message="the listener connects")
        listener.wait(0.5)  # the wake-up a (re)connection gives
        with override_settings(MEEPO={**settings.MEEPO, "DISPATCH": "database"}):
            with pytest.raises(RuntimeError), transaction.atomic():
                Job.objects.push("record", json={})
                raise RuntimeError("roll back")
            assert not listener.wait(2.0), "a rolled-back push woke the listener"
            with transaction.atomic():
                Job.objects.push("record", json={})
                Job.objects.push("record", json={})
            assert listener.wait(10.0), "a committed push wakes the listener"
    finally:
        listener.close()
