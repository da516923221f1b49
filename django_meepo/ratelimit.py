"""Rate limits across all workers: token buckets in Redis (the fast path) or in the database.

A task's ``RATE`` (``"100/s"``) is one bucket of ``count`` tokens refilled at ``count`` per ``period``; its
``KEY_RATE`` one such bucket per ``concurrency_key``. A claim takes one token of each bucket a job needs (its
task's, its key's) before the job is claimed; a job without a token is not claimed (it stays ``todo``, see
limits.py). Over any window of t seconds a bucket lets at most ``count + count * t / period`` jobs start: the
limit plus one burst.

* **Redis** (``DISPATCH = "redis"``): one Lua script (:data:`_TAKE`) refills and takes every bucket of a claim
  atomically on Redis's own clock (``TIME``), so every worker on every host draws from the same buckets. Key
  schema (``P`` the task's key prefix, ``T`` the task, ``K`` a concurrency key): ``{P:T}:rate`` (hash: tokens,
  ms) and ``{P:T}:rate:K``, under the task's hash tag so one script's buckets share a Redis Cluster slot; each
  expires a period after its last use (it is full by then, as if absent). Buckets of before the hash tags
  (``P:T:rate``) are not moved: they start full once, one more burst at the upgrade.
* **The database** (``DISPATCH = "database"``, and while Redis does not answer): the same buckets as
  ``FlowLimit`` rows (``tokens``, ``refilled_at`` on the database's clock), read and written under the task's
  flow lock (limits.py), so claims of one task take them one at a time.

The adversary's view: a take whose answer is lost spent tokens nobody used — fewer jobs start, never more. A
token taken for a job another worker claimed first is lost the same way. When Redis stops answering, the
database's buckets take over (and back): the two are separate, so a window spanning the switch may see one more
burst — documented, and still bounded. A clock that jumps: Redis's ``TIME`` and the database's clock are each
one clock for all workers; a step back refills nothing (elapsed time below 0 counts as 0).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from redis.exceptions import RedisError

from .dispatch.redis_keys import rate_key
from .models import FlowLimit
from .rates import Rate, parse_rate

log = logging.getLogger(__name__)

# After Redis failed to answer a take, the database's buckets serve for this long before Redis is tried again.
REDIS_RETRY_SECONDS = 5.0

# KEYS: 1 = the task's bucket (ignored when ARGV[1] is 0), 2.. = the key buckets of this claim.
# ARGV: task count, task period ms, key count, key period ms, then per job the index of its key bucket in KEYS
# (0: none). Returns per job 1 (a token taken from each bucket it needs) or 0, then the ms until a refused job's
# buckets hold a token again (0 when none was refused).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tc, tp, kc, kp = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tokens = {}
local function load(i, count, period)
  if tokens[i] == nil then
    local v = redis.call('HMGET', KEYS[i], 'tokens', 'ms')
    local have, ms = tonumber(v[1]), tonumber(v[2])
    if have == nil or ms == nil then have, ms = count, now end
    tokens[i] = math.min(count, have + math.max(0, now - ms) * count / period)
  end
  return tokens[i]
end
local out = {}
local wait = -1
for j = 5, #ARGV do
  local k = tonumber(ARGV[j])
  local ok = true
  local need = 0
  if tc > 0 and load(1, tc, tp) < 1 then ok = false; need = math.max(need, (1 - tokens[1]) * tp / tc) end
  if k > 0 and kc > 0 and load(k, kc, kp) < 1 then ok = false; need = math.max(need, (1 - tokens[k]) * kp / kc) end
  if ok then
    if tc > 0 then tokens[1] = tokens[1] - 1 end
    if k > 0 and kc > 0 then tokens[k] = tokens[k] - 1 end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
    if wait < 0 or need < wait then wait = need end
  end
end
for i, have in pairs(tokens) do
  local period = (i == 1) and tp or kp
  redis.call('HSET', KEYS[i], 'tokens', tostring(have), 'ms', tostring(now))
  redis.call('PEXPIRE', KEYS[i], math.ceil(period) + 1000)
end
out[#out + 1] = math.ceil(math.max(wait, 0))
return out
"""


@dataclass(frozen=True, slots=True)
class Grant:
    """Which jobs of a claim got their tokens (in the order asked), and the seconds until a refused one could."""

    granted: list[bool]
    retry_after: float


@dataclass(frozen=True, slots=True)
class TaskRates:
    """A task's rate limits, parsed: per task and per concurrency key (either may be None)."""

    task: str
    key_prefix: str
    rate: Rate | None
    key_rate: Rate | None

    @classmethod
    def of(cls, task: str, key_prefix: str, rate: str | None, key_rate: str | None) -> TaskRates:
        return cls(task, key_prefix, parse_rate(rate, name="RATE") if rate else None,
                   parse_rate(key_rate, name="KEY_RATE") if key_rate else None)

    @property
    def any(self) -> bool:
        return self.rate is not None or self.key_rate is not None


class Limiter:
    """Takes tokens for claims: through Redis unless ``client`` is None or Redis failed within the last
    :data:`REDIS_RETRY_SECONDS`; else :meth:`take_database`, which must run under the task's flow lock."""

    def __init__(self, client: object | None) -> None:
        self.client = client
        self._script = client.register_script(_TAKE) if client is not None else None  # type: ignore[attr-defined]
        self._redis_down_until = 0.0

    def redis_ready(self) -> bool:
        return self._script is not None and time.monotonic() >= self._redis_down_until

    def take_redis(self, rates: TaskRates, keys: Sequence[str | None]) -> Grant | None:
        """One token per job of each bucket it needs, in Redis; None when Redis did not answer (the caller falls
        back to the database)."""
        if not keys:
            return Grant([], 0.0)
        slots: dict[str, int] = {}
        per_job = [_key_slot(slots, key) if key is not None and rates.key_rate else 0 for key in keys]
        base = rate_key(rates.key_prefix, rates.task)  # the task's hash tag: one Cluster slot for every bucket
        redis_keys = [base, *(f"{base}:{key}" for key in slots)]
        task_rate, key_rate = rates.rate, rates.key_rate
        args = [task_rate.count if task_rate else 0, task_rate.period * 1000 if task_rate else 1,
                key_rate.count if key_rate else 0, key_rate.period * 1000 if key_rate else 1, *per_job]
        try:
            assert self._script is not None
            out = [int(v) for v in self._script(keys=redis_keys, args=args)]
        except (RedisError, OSError) as exc:
            log.warning("meepo: %s: rate limit through Redis failed (%s); counting in the database for %g s",
                        rates.task, exc, REDIS_RETRY_SECONDS, extra={"task": rates.task})
            self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            return None
        return Grant([v == 1 for v in out[:-1]], out[-1] / 1000)

    def take_database(self, rates: TaskRates, keys: Sequence[str | None], *, using: str,
                      now: datetime) -> Grant:
        """As :meth:`take_redis`, with the buckets as ``FlowLimit`` rows (the task's row ``flow_key=""``, one per
        key). Runs inside the transaction that holds the task's flow lock (limits.py), so no other claim of the
        task reads or writes these rows meanwhile; the rows exist already (``limits.ensure_rows``)."""
        wanted = sorted({k for k in keys if k is not None}) if rates.key_rate else []
        query = Q(flow_key="") | Q(flow_key__in=[_bucket_name(k) for k in wanted])
        rows = {r.flow_key: r for r in FlowLimit.objects.using(using).filter(query, task=rates.task)}
        tokens: dict[str, float] = {}

        def have(name: str, rate: Rate) -> float:
            if name not in tokens:
                row = rows[name]
                elapsed = max(0.0, (now - row.refilled_at).total_seconds()) if row.refilled_at else math.inf
                tokens[name] = min(float(rate.count), row.tokens + elapsed * rate.per_second)
            return tokens[name]

        granted: list[bool] = []
        wait = math.inf
        for key in keys:
            needs = [("", rates.rate)] if rates.rate else []
            if key is not None and rates.key_rate:
                needs.append((_bucket_name(key), rates.key_rate))
            short = [(1 - have(n, r)) / r.per_second for n, r in needs if have(n, r) < 1]
            if short:
                granted.append(False)
                wait = min(wait, max(short))
                continue
            for name, _ in needs:
                tokens[name] -= 1
            granted.append(True)
        for name, value in tokens.items():
            FlowLimit.objects.using(using).filter(task=rates.task, flow_key=name).update(tokens=value,
                                                                                        refilled_at=now)
        return Grant(granted, 0.0 if wait is math.inf else wait)


def _key_slot(slots: dict[str, int], key: str) -> int:
    """The KEYS index (from 2) of ``key``'s bucket in one take."""
    return slots.setdefault(key, len(slots) + 2)


def _bucket_name(key: str) -> str:
    """A key bucket's ``flow_key``: the concurrency key itself (keys are non-empty, the task's row is "")."""
    return key
