"""The side effects of committed transitions, owned by the state machine's verbs (never by their callers).

After a transition commits — at once in autocommit, at the caller's COMMIT inside a transaction, never after a
rollback — :func:`after_transaction`:

* gives the jobs it made due (``todo``, due now) to the process's outbox, which dispatches them;
* calls each task's ``on_finished`` hook with the jobs it ended (``done``, ``failed``, ``zombie``), once per
  task and batch (see ``hooks.py``);
* with the ``[metrics]`` extra, counts the runs the verb ended (``run_ended``: its kind of end, see
  ``metrics.py``) in ``meepo_jobs_finished_total``.

Neither can undo the commit, and neither raises: a dispatch that never happens is re-found by the sweeper; a hook
that raises is logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction

from . import metrics, outbox
from .hooks import FINAL, transitions_ended
from .states import Transition


def after_transaction(using: str, transitions: Sequence[Transition], now: datetime, *,
                      run_ended: str | None = None) -> None:
    """Dispatch what ``transitions`` made due and announce what they ended, once their commit is durable.

    ``run_ended``: the verb ended runs (``metrics.DONE``, ``FAILURE``, ``SNOOZED``, ``RELEASED``, ``RESCUED``,
    ``CANCELLED``); they are counted at the commit, when the metrics extra is installed. An operator's repush and
    commit pass none; a cancel passes ``CANCELLED`` (every job it ended, queued or running)."""
    if run_ended is not None and metrics.ENABLED:
        metrics.finished(using, run_ended, transitions)
    due = [d for t in transitions if (d := t.dispatchable(now)) is not None]
    ended = [t for t in transitions if t.status in FINAL]
    if due:
        outbox.after_transaction(due, using=using)
    if ended:
        transaction.on_commit(lambda: transitions_ended(ended, using), using=using)
