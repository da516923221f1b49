"""The dispatcher interface: how due job ids travel from the code that made them due to the workers.

The database holds the truth; a dispatcher is only the fast path. Whatever a dispatcher loses, the sweeper
finds again in the database (``missing`` tells it what was lost) and dispatches again.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..states import ClaimedJob, Dispatchable, Ref


@dataclass(frozen=True, slots=True)
class Source:
    """One task a worker consumes, with what a fetch needs to know about it."""

    task: str
    key_prefix: str
    lease_seconds: float
    #: the task's KEY_CONCURRENCY (limits.py): the database dispatcher skips rows of keys already at it
    key_limit: int | None = None


# The state machine's claim, as the worker gives it to a transport: claim these refs of this task (it knows the
# worker, the lease and the database); returns the jobs won.
Claim = Callable[["Source", Sequence[Ref]], list[ClaimedJob]]
# Where a transport hands each claimed batch, as soon as its claim returned (before it claims the next one).
Deliver = Callable[[list[ClaimedJob]], None]


class Dispatcher(abc.ABC):
    """A transport of job ids: put ids, take them (claimed through the state machine's verb), acknowledge them,
    and tell the sweeper what was lost. It never decides a job's state."""

    name: str = "abstract"
    #: False when the dispatcher cannot lose what is due (the table is the queue): the sweeper then skips
    #: its scans for jobs to dispatch again and only rescues expired leases.
    redispatches: bool = True

    @abc.abstractmethod
    def dispatch(self, items: Sequence[Dispatchable], *, prefixes: dict[str, str] | None = None) -> None:
        """Hand due jobs to the workers (``prefixes``: each task's key prefix, resolved by the caller). Raises
        DispatchError when it cannot; the outbox logs it and goes on."""

    @abc.abstractmethod
    def fetch(self, sources: Sequence[Source], count: int, *, worker: str, claim: Claim,
              deliver: Deliver, limits: Mapping[str, int] | None = None) -> bool:
        """Take up to ``count`` ids of these tasks for ``worker`` — at most ``limits[task]`` of a task named in
        ``limits`` (the room its run slots leave, see slots.py) — claim them through ``claim``, ``deliver``
        each task's won jobs as soon as they are claimed; True if it found entries (even if none was won).
        Never blocks."""

    @abc.abstractmethod
    def wait(self, sources: Sequence[Source], timeout: float) -> None:
        """Block until new work may be there, or ``timeout`` seconds have passed."""

    @abc.abstractmethod
    def missing(self, task: str, key_prefix: str, refs: Sequence[Ref]) -> list[Ref]:
        """Which of these due ``todo`` refs the dispatcher does not hold (lost, or never dispatched)."""

    @abc.abstractmethod
    def length(self, task: str, key_prefix: str) -> int:
        """How many entries wait for this task."""

    def recover(self, sources: Sequence[Source]) -> int:
        """Give back what dead workers took but never claimed; returns how many entries. Default: nothing."""
        return 0

    def lost_everything(self, sources: Sequence[Source] = ()) -> bool:
        """True once after the dispatcher lost what it held for one of ``sources`` (a flush, a restart with no
        data, on a Redis Cluster a node that came back empty)."""
        return False

    def heartbeat(self, worker: str) -> None:  # noqa: B027 - optional hook
        """Say that ``worker`` is alive (called about once a second by a running worker)."""

    def worker_stopped(self, worker: str) -> None:  # noqa: B027 - optional hook
        """Forget a worker that stopped cleanly."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def limit_of(limits: Mapping[str, int] | None, task: str, count: int) -> int:
    """At most ``count``, and at most ``limits[task]`` when ``limits`` names the task."""
    if limits is None or task not in limits:
        return count
    return max(0, min(count, limits[task]))


def in_order_of(won: Sequence[ClaimedJob], refs: Sequence[Ref]) -> list[ClaimedJob]:
    """``won`` in the order of the ``refs`` they were claimed from (a ref's first place when it is duplicated).

    A claim reads its won rows back in whatever order the database returns them; a dispatcher hands them out in
    the order it chose: Redis in the order popped (priority, then FIFO), the database dispatcher in priority order."""
    position: dict[int, int] = {}
    for i, ref in enumerate(refs):
        position.setdefault(ref.id, i)
    return sorted(won, key=lambda job: position.get(job.id, len(refs)))
