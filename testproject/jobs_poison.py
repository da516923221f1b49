"""Test jobs whose outcomes are hard to record (huge, NUL, lone surrogates)."""

from __future__ import annotations
