"""The vocabulary of the state machine (whose transitions live in ``statemachine.py``): statuses and the small
value objects that transitions take and return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import models

from .exceptions import InvalidJob, InvalidStatus


class Status(models.TextChoices):
    TODO = "todo", "todo"
    DOING = "doing", "doing"
    DONE = "done", "done"
    FAILED = "failed", "failed"
    ZOMBIE = "zombie", "zombie"
    CANCELLED = "cancelled", "cancelled"


ALL_STATUSES: tuple[str, ...] = tuple(Status.values)


def validate_status(status: object) -> str:
    if status not in ALL_STATUSES:
        raise InvalidStatus(f"{status!r} is not a job status (expected one of {', '.join(ALL_STATUSES)})")
    return str(status)


def validate_id(value: object, what: str = "job id") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        if isinstance(value, str) and value.isdigit() and int(value) > 0:
            return int(value)
        raise InvalidJob(f"{what} must be a positive integer, not {value!r}")
    return value
# Statuses a job ends in: nothing runs it again unless an operator repushes it (purge and delete take these).
FINISHED_STATUSES: tuple[str, ...] = (Status.DONE, Status.FAILED, Status.CANCELLED)
# What an operator may cancel (operators.cancel): a job not finished — queued, running or parked.
CANCEL_SOURCES: tuple[str, ...] = (Status.TODO, Status.DOING, Status.ZOMBIE)
# A repush of a job that is ``doing`` makes the new copy due this much later than now. The copy it fences off may
# sit in a worker's queue, claimed less than ``waiting.PROOF_AGE`` (0.25 s) ago, and start without a second proof
# (its outcome is refused, its cid being old); the delay makes it start, if at all, before the new copy can, so a
# job's runs start in cid order. A repush of a job in any other status is due at once.
REPUSH_RUNNING_DELAY = 1.0
# What the sweeper may do with a job whose lease expired (Meepo's SetHandleZombieJobsDstStatus).
ZOMBIE_DESTINATIONS: tuple[str, ...] = (Status.TODO, Status.FAILED, Status.DONE, Status.ZOMBIE)


@dataclass(frozen=True, slots=True)
class Ref:
    """A job as of one cid: what a Redis entry carries and what every transition is conditioned on."""

    id: int
    cid: int


@dataclass(frozen=True, slots=True)
class Dispatchable:
    """A job that became ``todo`` and is due: the caller hands it to the dispatcher."""

    task: str
    id: int
    cid: int
    priority: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedJob:
    """A job this worker won: its claim's cid is the one every later statement of this run is fenced by."""

    id: int
    task: str
    cid: int
    payload: bytes
    failed_times: int
    attempts: int
    priority: int
    started_at: datetime
    # When it was due (read by the claim, for the pickup-latency metric) and the W3C trace context of its push
    # (with tracing, see tracing.py); None where the caller does not know them.
    due_at: datetime | None = None
    trace_context: str | None = None

    @property
    def ref(self) -> Ref:
        return Ref(self.id, self.cid)


@dataclass(frozen=True, slots=True)
class Transition:
    """The outcome of one job's transition: its new status and cid, and when it is due (for todo)."""

    id: int
    task: str
    status: str
    cid: int
    due_at: datetime | None
    priority: int = 0

    def dispatchable(self, now: datetime) -> Dispatchable | None:
        if self.status == Status.TODO and self.due_at is not None and self.due_at <= now:
            return Dispatchable(self.task, self.id, self.cid, self.priority)
        return None


@dataclass(slots=True)
class BatchOutcome:
    """Which refs of a batch changed (with their new cid) and which did not (stale, gone, or raced)."""

    won: list[Ref]
    lost: list[Ref]
