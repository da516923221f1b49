"""Automatic failover: Redis while it answers, the database while it does not, and back again.

:class:`FailoverDispatcher` wraps the Redis dispatcher (the fast path) and the database dispatcher (the table is
the queue). It is what ``MEEPO["DISPATCH"] = "redis"`` gives each process: one, shared by its worker, its
sweeper and its outbox (``process_dispatcher``), so they share one breaker: an outage seen by any of them switches
them all, and one answer from Redis switches them all back.


* **Workers** fetch through Redis. When Redis stops answering (a pop, a wait or a heartbeat fails), the worker
  logs it once and claims due jobs straight from the table; about every ``probe_interval`` seconds it asks
  Redis again, and when Redis answers it logs that once and fetches through Redis again. For ``drain_seconds``
  after that it still polls the table whenever Redis has nothing, while the sweeper dispatches what became due
  during the outage (all of it when Redis restarted empty: its epoch key is gone).
* **Producers** (``push`` after commit, retries, rescues) dispatch to Redis. The first failure raises
  :class:`DispatchError` (``push`` logs it and returns: the row is committed); until the next probe, further
  dispatches are skipped at once instead of waiting for a connection timeout each. Nothing is lost by that:
  the rows are due ``todo`` jobs, which workers in failover claim from the table and the sweeper dispatches
  once Redis is back.
* **The sweeper** asks Redis what it holds; while Redis is down those calls raise :class:`DispatchError` (at
  once, between probes) and the sweeper only rescues expired leases.

A switch can neither lose a job nor run one twice: every claim, through either path, is the state machine's
conditional claim on the job's cid, so a Redis entry for a job already claimed from the table is stale and
dropped when it is popped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from ..exceptions import DispatchError
from ..states import ClaimedJob, Dispatchable, Ref
from .base import Claim, Deliver, Dispatcher, Source

log = logging.getLogger(__name__)


class Breaker:
    """Whether Redis is taken to be up and, while it is down, when to try it again (thread-safe)."""

    def __init__(self, probe_interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.probe_interval = probe_interval
        self.clock = clock
        self.down_since: float | None = None
        self._next_try = 0.0
        self._lock = threading.Lock()

    @property
    def up(self) -> bool:
        return self.down_since is None

    def may_try(self) -> bool:
        """True while up; while down, True for one caller once the probe interval has passed."""
        with self._lock:
            if self.down_since is None:
                return True
            now = self.clock()
            if now < self._next_try:
                return False
            self._next_try = now + self.probe_interval
            return True

    def failed(self) -> bool:
        """Record a failure; True if Redis was up until now."""
        with self._lock:
            now = self.clock()
            self._next_try = now + self.probe_interval
            if self.down_since is None:
                self.down_since = now
                return True
            return False

    def succeeded(self) -> bool:
        """Record an answer; True if Redis was down until now."""
        with self._lock:
            was_down = self.down_since is not None
            self.down_since = None
            return was_down


class FailoverDispatcher(Dispatcher):
    name = "failover"

    def __init__(self, primary: Dispatcher, fallback: Dispatcher, *, probe_interval: float = 1.0,
                 drain_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.primary = primary
        self.fallback = fallback
        self.breaker = Breaker(probe_interval, clock)
        self.drain_seconds = drain_seconds
        self.clock = clock
        self._drain_until = float("-inf")
        self._worker: str | None = None  # the worker fetching through this dispatcher, if any

    @property
    def using_fallback(self) -> bool:
        """True while this dispatcher takes Redis to be down."""
        return not self.breaker.up

    # -- switching
    def _went_down(self, exc: Exception) -> None:
        """Redis failed: the breaker opens. Said once per outage by whichever caller saw it first, in the words of
        a worker when this process's dispatcher has one (a worker, its sweeper and the outbox share it)."""
        if not self.breaker.failed():
            return
        if self._worker is not None:
            log.warning("meepo: worker %s: Redis unavailable (%s); claiming jobs straight from the database "
                        "until it answers again (dispatches are skipped meanwhile)", self._worker, exc)
        else:
            log.info("meepo: Redis unavailable (%s); dispatches are skipped until it answers again (workers "
                     "claim from the database, the sweeper dispatches what is due once Redis is back)", exc)

    def _came_back(self) -> None:
        """Redis answered: the breaker closes, and workers drain the table for ``drain_seconds``."""
        if not self.breaker.succeeded():
            return
        self._drain_until = self.clock() + self.drain_seconds
        if self._worker is not None:
            log.warning("meepo: worker %s: Redis answers again; fetching through Redis again", self._worker)
        else:
            log.info("meepo: Redis answers again; dispatching through Redis again")

    def _probe(self, worker: str) -> bool:
        """While down: ask Redis (at most once per probe interval); True when it answered and we switched back."""
        if not self.breaker.may_try():
            return False
        try:
            self.primary.heartbeat(worker)
        except DispatchError:
            self.breaker.failed()
            return False
        self._came_back()
        return True

    # -- producer side
    def dispatch(self, items: Sequence[Dispatchable], *, prefixes: dict[str, str] | None = None) -> None:
        if not items:
            return
        if not self.breaker.may_try():
            log.debug("meepo: Redis is down: %d job(s) left for the database path", len(items))
            return
        try:
            self.primary.dispatch(items, prefixes=prefixes)
        except DispatchError as exc:
            self._went_down(exc)
            raise
        self._came_back()

    # -- consumer side
    def fetch(self, sources: Sequence[Source], count: int, *, worker: str, claim: Claim,
              deliver: Deliver, limits: Mapping[str, int] | None = None) -> bool:
        """Through Redis while it is up (and, while draining after an outage, the table for what Redis did not
        give); each task's ``limits`` hold across both: the table is asked only for the room Redis left."""
        self._worker = worker
        delivered = 0
        per_task: Counter[str] = Counter()

        def counting(jobs: list[ClaimedJob]) -> None:
            nonlocal delivered
            delivered += len(jobs)
            per_task.update(job.task for job in jobs)
            deliver(jobs)

        found = False
        if self.breaker.up or self._probe(worker):
            try:
                found = self.primary.fetch(sources, count, worker=worker, claim=claim, deliver=counting,
                                           limits=limits)
            except DispatchError as exc:
                self._went_down(exc)
            else:
                if delivered or self.clock() >= self._drain_until:
                    return found
        left = None if limits is None else {t: n - per_task[t] for t, n in limits.items()}
        return self.fallback.fetch(sources, count - delivered, worker=worker, claim=claim,
                                   deliver=counting, limits=left) or found

    def wait(self, sources: Sequence[Source], timeout: float) -> None:
        if self.breaker.up:
            try:
                self.primary.wait(sources, timeout)
                return
            except DispatchError as exc:
                self._went_down(exc)
        self.fallback.wait(sources, timeout)

    def heartbeat(self, worker: str) -> None:
        self._worker = worker
        if not self.breaker.up:
            return  # fetch probes Redis
        try:
            self.primary.heartbeat(worker)
        except DispatchError as exc:
            self._went_down(exc)

    def worker_stopped(self, worker: str) -> None:
        if self._worker == worker:
            self._worker = None
        if self.breaker.up:
            self.primary.worker_stopped(worker)

    def close(self) -> None:
        self.primary.close()
        self.fallback.close()

    # -- sweeper side: Redis's answers, or DispatchError (at once while down, between probes)
    def _ask(self, call: Callable[[], object]) -> object:
        if not self.breaker.may_try():
            raise DispatchError("Redis is unavailable (not asked again until the next probe)")
        try:
            result = call()
        except DispatchError as exc:
            self._went_down(exc)
            raise
        self._came_back()
        return result

    def missing(self, task: str, key_prefix: str, refs: Sequence[Ref]) -> list[Ref]:
        return self._ask(lambda: self.primary.missing(task, key_prefix, refs))  # type: ignore[return-value]

    def length(self, task: str, key_prefix: str) -> int:
        return self._ask(lambda: self.primary.length(task, key_prefix))  # type: ignore[return-value]

    def recover(self, sources: Sequence[Source]) -> int:
        return self._ask(lambda: self.primary.recover(sources))  # type: ignore[return-value]

    def lost_everything(self, sources: Sequence[Source] = ()) -> bool:
        return self._ask(lambda: self.primary.lost_everything(sources))  # type: ignore[return-value]
