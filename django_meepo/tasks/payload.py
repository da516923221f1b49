"""The payload of a Django Task's job: which Task to run, with what, on which backend.

```json
{"django_task": "myapp.tasks.send_welcome", "backend": "default", "args": [42], "kwargs": {},
 "run_after": null, "max_attempts": null, "retry_backoff": null}
```

The queue is the job's django-meepo task (``Job.task``) and the priority and due time are the job's
``priority`` and ``due_at``; they are not repeated here. Reading is strict: anything that is not exactly this
shape is not a Django Task job (:meth:`TaskSpec.parse` returns None), and nothing here imports or runs code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MARKER = "django_task"


def _normalise(value: Any) -> Any:
    """Django's ``normalize_json`` (mappings → dicts, sequences → lists, bytes → str), without the framework."""
    if isinstance(value, Mapping):
        return {_normalise(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TypeError(f"bytes that are not UTF-8 text: {value[:20]!r}") from exc
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Sequence):
        return [_normalise(v) for v in value]
    raise TypeError(f"Unsupported type: {type(value)}")


def json_round_trip(value: Any, what: str) -> Any:
    """``value`` as JSON gives it back, or TypeError: what a Task's arguments and return value must survive."""
    try:
        normalised = _normalise(value)
        text = json.dumps(normalised, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serialisable: {exc}") from exc
    if json.loads(text) != normalised:
        raise TypeError(f"{what} do not round-trip through JSON (a dict key that is not a string?): {value!r}")
    return normalised


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpec:
    """What a Django Task job holds (besides its queue, priority and due time, which are Job columns)."""

    path: str
    backend: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    run_after: datetime | None = None
    max_attempts: int | None = None
    retry_backoff: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {MARKER: self.path, "backend": self.backend, "args": self.args, "kwargs": self.kwargs,
                "run_after": self.run_after.isoformat() if self.run_after else None,
                "max_attempts": self.max_attempts, "retry_backoff": self.retry_backoff}

    @classmethod
    def parse(cls, raw: bytes | memoryview | None) -> TaskSpec | None:
        """The spec in a job's payload, or None when the payload is not a Django Task job's."""
        try:
            data = json.loads(bytes(raw or b""))
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get(MARKER), str) or not data[MARKER]:
            return None
        args, kwargs, backend = data.get("args"), data.get("kwargs"), data.get("backend")
        if not isinstance(args, list) or not isinstance(kwargs, dict) or not isinstance(backend, str):
            return None
        run_after = None
        if data.get("run_after") is not None:
            try:
                run_after = datetime.fromisoformat(data["run_after"])
            except (TypeError, ValueError):
                return None
        max_attempts, backoff = data.get("max_attempts"), data.get("retry_backoff")
        if (max_attempts is not None and not _is_count(max_attempts)) or (
                backoff is not None and not _is_seconds(backoff)):
            return None
        return cls(path=data[MARKER], backend=backend, args=args, kwargs=kwargs, run_after=run_after,
                   max_attempts=max_attempts, retry_backoff=backoff)
