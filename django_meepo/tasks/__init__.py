"""A backend for Django's Tasks framework (``django.tasks``; the ``django-tasks`` backport on Django 5.2).

```python
TASKS = {"default": {"BACKEND": "django_meepo.tasks.MeepoBackend", "QUEUES": ["default", "emails"]}}
```
Then ``manage.py meepo_consume default emails`` runs the Tasks of those queues. See docs/tasks.md.

:func:`describe` renders a job readably (task path, args, kwargs, return value) without the framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import MeepoBackend, MeepoTask
    from .results import describe

__all__ = ["MeepoBackend", "MeepoTask", "describe"]

_LAZY = {"MeepoBackend": "backend", "MeepoTask": "backend", "describe": "results"}


def __getattr__(name: str) -> Any:
    """Loaded on first use: ``describe`` works without the Tasks framework; the backend needs it."""
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
