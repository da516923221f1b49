"""What a benchmark job records, and how the harness reads it back.

The job function of every system calls :func:`record` with the job's number: a list append under a lock.
A thread in each worker process sends what was recorded to the *results* Redis (never the broker: the flush
workload flushes the broker) every 20 ms, in one pipeline. Keys, under ``K`` = ``$BENCH_RUN_KEY``:

| key          | type    | holds                                                            |
|--------------|---------|------------------------------------------------------------------|
| ``K:ran``    | set     | numbers of the jobs that ran (distinct)                          |
| ``K:calls``  | string  | job function calls (duplicates included)                         |
| ``K:first``  | hash    | pid → time of that process's first call                          |
| ``K:last``   | hash    | pid → time of its latest call                                    |
| ``K:starts`` | hash    | job number → time the function started (``start=True`` only)     |

With ``BENCH_RECORD_SYNC=1`` every call is sent at once: RQ's forking worker runs each job in a child that
leaves with ``os._exit``, before any thread could send it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

log = logging.getLogger(__name__)

ENV_URL = "BENCH_RESULTS_URL"
ENV_KEY = "BENCH_RUN_KEY"
ENV_SYNC = "BENCH_RECORD_SYNC"
FLUSH_EVERY = 0.02


class _Recorder:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A fresh state: at import, and in a child right after a fork (the parent's lock may be held)."""
        self._lock = threading.Lock()
        self._items: list[tuple[int, float, bool]] = []
        self._client: redis.Redis | None = None
        self._thread: threading.Thread | None = None
        self._first: float | None = None
        self._sync = os.environ.get(ENV_SYNC) == "1"

    def record(self, number: int, *, start: bool = False) -> None:
        now = time.time()
        with self._lock:
            self._items.append((number, now, start))
            if self._thread is None and not self._sync:
                self._thread = threading.Thread(target=self._loop, name="bench-recorder", daemon=True)
                self._thread.start()
        if self._sync:
            self.flush()

    def _loop(self) -> None:
        while True:
            time.sleep(FLUSH_EVERY)
            try:
                self.flush()
            except redis.RedisError as exc:
                log.warning("bench recorder: could not send results (%s); retrying", exc)

    def flush(self) -> None:
        with self._lock:
            items, self._items = self._items, []
        if not items:
            return
        key = os.environ[ENV_KEY]
        if self._client is None:
            self._client = redis.Redis.from_url(os.environ[ENV_URL])
        pid = os.getpid()
        if self._first is None:
            self._first = min(t for _, t, _ in items)
        starts: dict[Any, float] = {n: t for n, t, start in items if start}
        pipe = self._client.pipeline(transaction=False)
        pipe.sadd(f"{key}:ran", *{n for n, _, _ in items})
        pipe.incrby(f"{key}:calls", len(items))
        pipe.hsetnx(f"{key}:first", pid, self._first)
        pipe.hset(f"{key}:last", pid, max(t for _, t, _ in items))
        if starts:
            pipe.hset(f"{key}:starts", mapping=starts)
        try:
            pipe.execute()
        except redis.RedisError:
            with self._lock:
                self._items[:0] = items
            raise


_recorder = _Recorder()
os.register_at_fork(after_in_child=_recorder.reset)


def record(number: int, *, start: bool = False) -> None:
    """Record that job ``number`` ran (and, with ``start=True``, when its function started)."""
    _recorder.record(number, start=start)


@dataclass(frozen=True, slots=True)
class Progress:
    ran: int
    calls: int


class Probe:
    """The harness's side: reads what the jobs of one run recorded."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url)
        self.key = key

    def env(self) -> dict[str, str]:
        """Environment for worker processes, so their job functions record here."""
        return {ENV_URL: self.url, ENV_KEY: self.key}

    def progress(self) -> Progress:
        pipe = self.client.pipeline(transaction=False)
        pipe.scard(f"{self.key}:ran")
        pipe.get(f"{self.key}:calls")
        ran, calls = pipe.execute()
        return Progress(int(ran), int(calls or 0))

    def window(self) -> tuple[float, float] | None:
        """(first call, latest call) over every process, or None before any call."""
        firsts = [float(v) for v in self.client.hvals(f"{self.key}:first")]
        lasts = [float(v) for v in self.client.hvals(f"{self.key}:last")]
        return (min(firsts), max(lasts)) if firsts and lasts else None

    def starts(self) -> dict[int, float]:
        return {int(k): float(v) for k, v in self.client.hgetall(f"{self.key}:starts").items()}

    def wait(self, target: int, *, stall: float, deadline: float | None = None,
             alive: Callable[[], None] | None = None, settle: bool = True) -> Progress:
        """Wait until ``target`` distinct jobs ran, no job ran for ``stall`` seconds, or ``deadline`` passed.

        ``alive`` is called on every poll and raises if the workers died. With ``settle`` (the default) it then
        waits a few flush periods more, so that what the workers recorded has arrived.
        """
        progress = self.progress()
        moved_at = time.monotonic()
        while progress.ran < target:
            now = time.monotonic()
            if now - moved_at > stall or (deadline is not None and now > deadline):
                break
            if alive is not None:
                alive()
            time.sleep(0.02)
            latest = self.progress()
            if latest.calls != progress.calls:
                moved_at = time.monotonic()
            progress = latest
        if not settle:
            return progress
        time.sleep(FLUSH_EVERY * 3)
        return self.progress()

    def clear(self) -> None:
        self.client.delete(*(f"{self.key}:{k}" for k in ("ran", "calls", "first", "last", "starts")))

