"""Periodic jobs with real ``meepo_consume`` processes: two workers, each with its sweeper, race for every tick of
a schedule that ticks every second (cronsim's six-field form) on the real clock; the database gives each tick
exactly one job, and the workers run each once."""

from __future__ import annotations

import json
import signal
from collections import Counter

import pytest

from django_meepo import Job
from django_meepo.models import ScheduleTick
from testproject.models import Run
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
EVERY_SECOND = json.dumps({"every-second": {"task": "other", "cron": "* * * * * *", "missed": "skip",
                                            "json": {"sleep": 0}}})


def test_two_workers_give_every_tick_exactly_one_job(workers) -> None:  # type: ignore[no-untyped-def]
    started = [workers.consume("other", MEEPO_SCHEDULE=EVERY_SECOND) for _ in range(2)]
    wait_until(lambda: ScheduleTick.objects.filter(name="every-second").count() >= 12, timeout=180, interval=0.5,
               message=f"12 ticks; worker logs: {[w.output()[-1500:] for w in started]}")
    for w in started:
        w.signal(signal.SIGTERM)
    for w in started:
        assert w.wait(timeout=120) == 0, w.output()[-3000:]
    ticks = list(ScheduleTick.objects.filter(name="every-second").values_list("tick", "job_id"))
    jobs = list(Job.objects.filter(task="other").values_list("id", flat=True))
    assert len({t for t, _ in ticks}) == len(ticks) >= 12
    assert sorted(j for _, j in ticks) == sorted(jobs), "one job per tick, none without its tick"
    runs = Counter(Run.objects.filter(task="other").values_list("job_id", flat=True))
    assert runs and max(runs.values()) == 1, "no job ran twice"
    won = [w.output().count("schedule every-second: pushed") for w in started]
    assert sum(won) == len(ticks), won
