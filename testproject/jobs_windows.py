"""Test jobs for the loss-window tests (lost replies, prefetch, lost claims)."""

from __future__ import annotations
