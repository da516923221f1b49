"""A worker's fetch, for tests of transports: take ids, claim them through the state machine, collect the jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django_meepo import outbox
from django_meepo import statemachine as sm
from django_meepo.dispatch.base import Dispatcher, Source


def fetch_claimed(d: Dispatcher, sources: Sequence[Source], count: int, *, worker: str,
                  using: str, limits: Mapping[str, int] | None = None) -> list[sm.ClaimedJob]:
    """What ``d`` delivers to a worker named ``worker`` (after this process's pending dispatches went out)."""
    outbox.flush()
    got: list[sm.ClaimedJob] = []

    def claim(source: Source, refs: Sequence[sm.Ref]) -> list[sm.ClaimedJob]:
        return sm.claim(source.task, list(refs), worker=worker, lease_seconds=source.lease_seconds, using=using)

    d.fetch(sources, count, worker=worker, claim=claim, deliver=got.extend, limits=limits)
    return got
