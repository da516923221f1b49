"""Test jobs for the clock-skew tests (leases and due times on the database's clock)."""

from __future__ import annotations
