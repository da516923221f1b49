"""Operations on existing jobs, for code, the admin and management commands (the operators' verbs).

The verbs live in ``operators.py`` — one layer: each is the whole transition, with its dispatch and hooks. This
module is their public name, kept for code that imported it. ``pause``/``resume``/``paused`` (``pauses.py``)
stop and restart the claiming of a task's jobs.
"""

from __future__ import annotations

from .exceptions import MeepoError
from .operators import (
    CancelOutcome,
    cancel,
    cancel_many,
    commit,
    operator_commit,
    operator_commit_many,
    repush,
    repush_many,
)
from .pauses import pause, paused, resume

__all__ = ["CancelOutcome", "MeepoError", "cancel", "cancel_many", "commit", "operator_commit",
           "operator_commit_many", "pause", "paused", "repush", "repush_many", "resume"]
