"""Unique jobs: ``push(unique_key=..., unique_for=..., unique_while=...)`` returns the job that already holds the
key instead of inserting a second one.

How it is race-free. A job pushed with a unique key *holds* it: the key is written to ``unique_hold``, which is
unique per task (a UNIQUE constraint on ``(task, unique_hold)``; NULLs never collide, so jobs without a key cost
one NULL index entry). A second push of the key hits the constraint in the database itself — also when the
first push's transaction has not committed yet: the second INSERT waits on the first's row lock, then fails (it
committed) or succeeds (it rolled back). Nothing is decided from a read alone.

When the holder is out of scope. The pusher's scope says which holders count:

* ``unique_while="pending"``: a holder counts while it is ``todo`` (not yet started, or waiting to be retried);
* ``"running"`` (the default): while ``todo`` or ``doing`` — until it finished;
* ``"finished"``: whatever its status, finished ones too;

and ``unique_for`` (seconds or a timedelta; default: no limit) counts a holder only if it was created less than
that long ago, on the database's clock. A holder that does not count is made to let go of the key — one
conditional UPDATE (``unique_hold`` = the key → NULL, on that row only) — and the INSERT is tried again. The
scope is judged by the pusher at its push; nothing is released when a job changes status, so the state machine
and its hot statements are untouched. The consequence, documented: a ``"pending"`` holder that started, failed
and went back to ``todo`` for a retry is pending again and still counts; one released meanwhile does not come
back.

Adversary's notes. *The INSERT's answer is lost* (connection dropped): the savepoint and the caller's
transaction are gone with the connection, so nothing was written that the caller could believe in; Django
raises. *The release runs twice or loses a race* (two pushers both found the holder out of scope): the UPDATE
is conditional on the key still being held by that row, so the second changes nothing; both try the INSERT
again and the constraint lets exactly one in — the other then finds the new holder in scope and returns it.
*A holder is deleted meanwhile* (purge): the read finds nothing and the INSERT is tried again. *MySQL deadlock*
(error 1213, possible when three pushers wait on a holder whose transaction rolls back): MySQL rolls back the
caller's whole transaction, as for any deadlock; the caller retries its transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction

from . import inserts
from .exceptions import MeepoError
from .inserts import NewJob
from .states import Status
from .tables import for_task

if TYPE_CHECKING:
    from .models import AbstractJob

__all__ = ["SCOPES", "UNIQUE_KEY_MAX", "Unique", "check_unique", "push_many_unique", "push_unique"]

UNIQUE_KEY_MAX = 200
# The statuses of a holder that count, by scope; None: every status.
SCOPES: dict[str, tuple[str, ...] | None] = {
    "pending": (Status.TODO.value,),
    "running": (Status.TODO.value, Status.DOING.value),
    "finished": None,
}
DEFAULT_SCOPE = "running"
TRIES = 5


@dataclass(frozen=True, slots=True)
class Unique:
    """What a push asked of its unique key: the key, how long a holder counts, and which statuses count."""

    key: str
    seconds: float | None
    scope: str

    def counts(self, holder: AbstractJob, now: datetime) -> bool:
        """Whether ``holder`` (a job holding the key) keeps this push from inserting a second job."""
        statuses = SCOPES[self.scope]
        if statuses is not None and holder.status not in statuses:
            return False
        return self.seconds is None or holder.created_at > now - timedelta(seconds=self.seconds)


def check_unique(key: Any, unique_for: Any = None, unique_while: Any = None) -> Unique | None:
    """The push's uniqueness from its arguments, or None without a key; ValueError naming what is wrong."""
    if key is None:
        if unique_for is not None or unique_while is not None:
            raise ValueError("unique_for= and unique_while= need a unique_key=")
        return None
    if not isinstance(key, str) or not key or len(key) > UNIQUE_KEY_MAX:
        raise ValueError(f"unique_key must be a non-empty string of at most {UNIQUE_KEY_MAX} characters, "
                         f"not {key!r}")
    scope = DEFAULT_SCOPE if unique_while is None else unique_while
    if scope not in SCOPES:
        raise ValueError(f"unique_while must be one of {', '.join(map(repr, SCOPES))}, not {unique_while!r}")
    return Unique(key, _seconds(unique_for), scope)


def _seconds(unique_for: Any) -> float | None:
    if unique_for is None:
        return None
    if isinstance(unique_for, timedelta):
        seconds = unique_for.total_seconds()
    elif isinstance(unique_for, int | float) and not isinstance(unique_for, bool):
        seconds = float(unique_for)
    else:
        raise ValueError(f"unique_for must be a number of seconds or a timedelta, not {unique_for!r}")
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"unique_for must be a positive, finite duration, not {unique_for!r}")
    return seconds


def push_unique(new: NewJob, unique: Unique, alias: str, now: datetime) -> AbstractJob:
    """INSERT ``new`` holding ``unique.key``, or return the job that holds it and counts.

    The returned job's ``_meepo_created`` says which. Runs in a savepoint of the caller's transaction (its own
    transaction in autocommit), so a refused INSERT leaves the caller's transaction usable on every database.
    """
    model = for_task(new.task).model
    with transaction.atomic(using=alias):
        for _ in range(TRIES):
            try:
                with transaction.atomic(using=alias):
                    job = inserts.as_model(alias, inserts.insert(alias, [new])[0], new)
                job._meepo_created = True  # type: ignore[attr-defined]
                return job
            except IntegrityError:
                holder = (model.objects.using(alias).select_for_update()
                          .filter(task=new.task, unique_hold=unique.key).first())
                if holder is None:
                    continue  # let go of meanwhile (or purged): try again
                if unique.counts(holder, now):
                    holder._meepo_created = False  # type: ignore[attr-defined]
                    return holder
                # Out of the pusher's scope: it lets go of the key (only if it still holds it) and we try again.
                model.objects.using(alias).filter(id=holder.id, unique_hold=unique.key).update(unique_hold=None)
    raise MeepoError(f"push of task {new.task!r} with unique_key {unique.key!r}: the key changed hands "
                     f"{TRIES} times in a row; try again")


def push_many_unique(news: Sequence[NewJob], unique: Sequence[Unique | None], alias: str, now: datetime,
                     bulk: Callable[[Sequence[NewJob]], list[int]]) -> list[AbstractJob]:
    """Each of ``news`` inserted, or the job holding its key, in order, in the caller's transaction: the jobs
    without a key through ``bulk`` (as few INSERTs as their size allows), the others one by one — so a key
    given twice in one batch gives the first job twice."""
    jobs: dict[int, AbstractJob] = {}
    with transaction.atomic(using=alias):
        plain = [i for i, u in enumerate(unique) if u is None]
        for i, job_id in zip(plain, bulk([news[i] for i in plain]) if plain else [], strict=True):
            jobs[i] = inserts.as_model(alias, job_id, news[i])
            jobs[i]._meepo_created = True  # type: ignore[attr-defined]
        for i, u in enumerate(unique):
            if u is not None:
                jobs[i] = push_unique(news[i], u, alias, now)
    return [jobs[i] for i in range(len(news))]
