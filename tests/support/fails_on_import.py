"""A module whose import fails with something other than ImportError (a bug in a user's jobs module)."""

raise RuntimeError("this module fails on import on purpose")
