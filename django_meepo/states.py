"""Job statuses: the vocabulary of the state machine (whose transitions live in ``statemachine.py``)."""

from __future__ import annotations

from django.db import models


class Status(models.TextChoices):
    TODO = "todo", "todo"
    DOING = "doing", "doing"
    DONE = "done", "done"
    FAILED = "failed", "failed"
    ZOMBIE = "zombie", "zombie"


ALL_STATUSES: tuple[str, ...] = tuple(Status.values)
FINISHED_STATUSES: tuple[str, ...] = (Status.DONE, Status.FAILED)
# What the sweeper may do with a job whose lease expired (Meepo's SetHandleZombieJobsDstStatus).
ZOMBIE_DESTINATIONS: tuple[str, ...] = (Status.TODO, Status.FAILED, Status.DONE, Status.ZOMBIE)
