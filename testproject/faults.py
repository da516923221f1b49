"""Fault injection for worker subprocesses: ``MEEPO_TEST_FAULT=<name>`` installs the hook of that name.

Each hook patches one place in the worker process; the acceptance tests name them. An unknown name fails the
process at start, so a test can never run without the fault it asked for.
"""

from __future__ import annotations

from collections.abc import Callable

HOOKS: dict[str, Callable[[], None]] = {}


def install(name: str) -> None:
    for part in filter(None, name.split(",")):
        if part not in HOOKS:
            raise RuntimeError(f"MEEPO_TEST_FAULT: unknown fault {part!r} (known: {', '.join(sorted(HOOKS))})")
        HOOKS[part]()


def deadlock_second_claim() -> None:
    """Issue 9, window 3: within one fetch, the claim of a second task raises a deadlock (1213) once, after the
    first task's claim committed and won jobs.

    Wraps the state machine's claim wherever a fetch may call it from: ``django_meepo.statemachine.claim`` (the
    worker's path after the redesign) and the names the dispatchers imported it under (``dispatch.redis.claim``,
    ``dispatch.database.claim``), whichever exist. The raise is announced on stderr, so a test can check that the
    fault really happened.
    """
    import sys
    import time

    from django.db import OperationalError

    import django_meepo.dispatch.database as database_transport
    import django_meepo.dispatch.redis as redis_transport
    import django_meepo.statemachine as sm

    real = sm.claim
    state: dict[str, object] = {"won_task": None, "won_at": 0.0, "fired": False}

    def claim(task, refs, *args, **kwargs):  # type: ignore[no-untyped-def]
        won_task = state["won_task"]
        if (not state["fired"] and refs and won_task is not None and won_task != task
                and time.monotonic() - float(state["won_at"]) < 1.0):  # type: ignore[arg-type]
            state["fired"] = True
            print(f"meepo-test: deadlock_second_claim: the claim of {task} raised after {won_task}'s claim won",
                  file=sys.stderr, flush=True)
            raise OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction "
                                         "(injected by deadlock_second_claim)")
        won = real(task, refs, *args, **kwargs)
        if won and not state["fired"]:
            state["won_task"], state["won_at"] = task, time.monotonic()
        return won

    sm.claim = claim  # type: ignore[assignment]
    for module in (redis_transport, database_transport):
        if hasattr(module, "claim"):
            module.claim = claim  # type: ignore[attr-defined]


HOOKS["deadlock_second_claim"] = deadlock_second_claim


def slow_lease_renewal() -> None:
    """The monitor's lease renewals wait 0.3 s after it read its holdings: jobs finish and commit meanwhile.
    (Only the monitor thread's: the proofs of waiting jobs before they start go at full speed.)"""
    import logging
    import threading
    import time

    from django_meepo import statemachine as sm

    real = sm.extend_leases

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "meepo-monitor":
            time.sleep(0.3)
            logging.getLogger("django_meepo").warning("fault: slowed a lease renewal of %d job(s)", len(args[0]))
        return real(*args, **kwargs)

    sm.extend_leases = slow


HOOKS["slow_lease_renewal"] = slow_lease_renewal


def time_limit_record_raises() -> None:
    """Recording a time-limit failure raises (the state machine's finish_failed, for that outcome only)."""
    from django_meepo import statemachine as sm
    from django_meepo.models import Attempt

    real = sm.finish_failed

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("outcome") == Attempt.Outcome.TIME_LIMIT:
            raise RuntimeError("fault: recording the time-limit failure raised")
        return real(*args, **kwargs)

    sm.finish_failed = failing


HOOKS["time_limit_record_raises"] = time_limit_record_raises
