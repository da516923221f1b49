"""The Redis dispatcher. Redis carries job ids and cids only — never payloads — and is parsed strictly.

Key schema (``P`` is the task's key prefix, default ``MEEPO["KEY_PREFIX"]`` = ``"meepo"``; ``G`` is the global
prefix; ``T`` the task name; ``W`` a worker id):

| key                          | type    | holds                                                                 |
|------------------------------|---------|-----------------------------------------------------------------------|
| ``P:T:q:hi``                 | zset    | due entries of priority 1 … 100, scored by priority, then sequence    |
| ``P:T:q:2``                  | list    | due entries of priority 0 (the default): first in, first out          |
| ``P:T:q:lo``                 | zset    | due entries of priority -100 … -1, scored like ``q:hi``               |
| ``P:T:seq``                  | string  | the sequence that keeps ``q:hi`` and ``q:lo`` first in, first out     |
| ``P:T:dispatched``           | hash    | id → cid of every entry in a queue or in flight: what Redis holds     |
| ``P:T:inflight:W``           | list    | entries worker W popped and has not yet claimed (closes the pop→claim gap) |
| ``P:T:inflight``             | set     | workers that may have an in-flight list for T                         |
| ``P:T:notify``               | channel | a message per dispatch, so idle workers wake at once                  |
| ``G:alive:W``                | string  | present while worker W runs (short TTL, refreshed every second)       |
| ``G:epoch``                  | string  | a random value; gone when Redis lost its data (flush, empty restart)  |

Exact priority: a pop takes from ``q:hi`` (lowest score first), then ``q:2``, then ``q:lo``. A score is
``(100 - priority) * 2**40 + sequence``, so a higher priority pops first and one priority is first in, first out;
every score is an integer below 2**53, exact in a double. The default priority, by far the most common, costs what
it always did: one RPUSH, one LPOP. ``q:2`` keeps the name of the list that held priority 0 when there were five
bands (``P:T:q:0`` … ``P:T:q:4``), so an upgrade leaves that backlog where it is; the sweeper's ``recover`` moves
what the other old band lists still hold into ``q:hi`` and ``q:lo`` (``legacy_keys``). A pop takes a fair share
from each of a worker's tasks before filling up from any.

The record of what was dispatched (``P:T:dispatched``) lives in Redis beside the lists, so both vanish together:
the sweeper re-dispatches a due ``todo`` job only when that record lacks it at its cid, never because it is old.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from ..exceptions import DispatchError
from ..states import Dispatchable, Ref
from .base import Claim, Deliver, Dispatcher, Source, in_order_of, limit_of

log = logging.getLogger(__name__)

# Scores: (100 - priority) * SPAN + sequence. Priorities are -100 … 100, so a score stays below 201 * 2**40 < 2**53.
SPAN = 2**40
HI, DEFAULT, LO = 0, 1, 2  # indexes into queue_keys, in the order a pop takes them
# The old band lists, and the priority each one's entries are moved in at: the highest of its band, so an old
# entry never runs later than its priority would have had it run. Band 2 (priority 0) is today's default list.
LEGACY_BANDS = ((0, 100), (1, 49), (3, -1), (4, -50))


def queue_of(priority: int) -> int:
    """Which of ``queue_keys`` an entry of ``priority`` goes to."""
    return HI if priority > 0 else DEFAULT if priority == 0 else LO


def queue_keys(prefix: str, task: str) -> list[str]:
    """The task's queues in the order a pop takes them: ``q:hi`` (zset), ``q:2`` (list, priority 0), ``q:lo``."""
    return [f"{prefix}:{task}:q:hi", f"{prefix}:{task}:q:2", f"{prefix}:{task}:q:lo"]


def sequence_key(prefix: str, task: str) -> str:
    return f"{prefix}:{task}:seq"


def legacy_keys(prefix: str, task: str) -> list[str]:
    """The band lists of before exact priority that are not ``q:2`` (see ``LEGACY_BANDS``)."""
    return [f"{prefix}:{task}:q:{band}" for band, _ in LEGACY_BANDS]


def queued_entries(client: Redis, prefix: str, task: str) -> list[bytes]:
    """Every entry queued for ``task``, in the order a pop would take them (for tests and operators)."""
    hi, default, lo = queue_keys(prefix, task)
    pipe = client.pipeline(transaction=False)
    pipe.zrange(hi, 0, -1)
    pipe.lrange(default, 0, -1)
    pipe.zrange(lo, 0, -1)
    return [e for part in pipe.execute() for e in part]


def dispatched_key(prefix: str, task: str) -> str:
    return f"{prefix}:{task}:dispatched"


def inflight_key(prefix: str, task: str, worker: str) -> str:
    return f"{prefix}:{task}:inflight:{worker}"


def inflight_set_key(prefix: str, task: str) -> str:
    return f"{prefix}:{task}:inflight"


def notify_channel(prefix: str, task: str) -> str:
    return f"{prefix}:{task}:notify"


def encode(ref: Ref) -> str:
    return f"{ref.id}:{ref.cid}"


def decode(raw: Any) -> Ref | None:
    """Parse ``b"<id>:<cid>"`` strictly; anything else is None (logged and dropped by the caller)."""
    try:
        text = raw.decode("ascii") if isinstance(raw, bytes) else str(raw)
    except UnicodeDecodeError:
        return None
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isdigit() and 0 < len(p) <= 19 for p in parts):
        return None
    job_id, cid = int(parts[0]), int(parts[1])
    return Ref(job_id, cid) if job_id > 0 and cid > 0 else None


# KEYS per task: its three queues (queue_keys: hi zset, default list, lo zset), inflight list, inflight set,
# dispatched hash. ARGV: count, ntasks, worker, alive key, alive ttl ms, then each task's limit (the most to hand
# out for it). Pass 0 hands out again what is already in this worker's in-flight lists; pass 1 takes a fair share
# from each task; pass 2 fills what is left in task order. An entry whose cid is not
# the one recorded in the dispatched hash is stale (its job was repushed, or claimed through a duplicate) and is
# dropped here, without a trip to the database; malformed entries go to the client, which logs and drops them.
# A call examines at most ten entries per entry wanted, so a long run of stale entries never blocks Redis.
# A queue is asked again only while it answered all that was asked: the default case (priority 0 only) costs one
# ZPOPMIN of a missing q:hi, the LPOPs it needs, and a ZPOPMIN of q:lo only when q:2 ran out.
_POP = """
local count = tonumber(ARGV[1])
local ntasks = tonumber(ARGV[2])
local per = 6
redis.call('SET', ARGV[4], '1', 'PX', ARGV[5])
local out = {}
local limit = {}
for t = 1, ntasks do
  out[t] = {}
  limit[t] = tonumber(ARGV[5 + t]) or count
end
local taken = 0
local function from(q, key, n)
  if q == 2 then return redis.call('LPOP', key, n) end
  local popped = redis.call('ZPOPMIN', key, n)
  if #popped == 0 then return false end
  local items = {}
  for i = 1, #popped, 2 do items[#items + 1] = popped[i] end
  return items
end
local function take(t, want)
  want = math.min(want, limit[t] - #out[t])
  if want <= 0 then return 0 end
  local base = (t - 1) * per
  local record = KEYS[base + 6]
  local got = 0
  local budget = want * 10 + 100
  for q = 1, 3 do
    while got < want and budget > 0 do
      local asked = math.min(want - got, budget)
      local items = from(q, KEYS[base + q], asked)
      if not items then break end
      budget = budget - #items
      local keep = {}
      for _, e in ipairs(items) do
        local id, cid = string.match(e, '^(%d+):(%d+)$')
        if not id or redis.call('HGET', record, id) == cid then keep[#keep + 1] = e end
      end
      if #keep > 0 then
        for _, e in ipairs(keep) do table.insert(out[t], e) end
        redis.call('RPUSH', KEYS[base + 4], unpack(keep))
        got = got + #keep
      end
      if #items < asked then break end  -- this queue is empty now: no call to find that out
    end
  end
  if got > 0 then redis.call('SADD', KEYS[base + 5], ARGV[3]) end
  return got
end
-- Pass 0: what this worker popped earlier and never acknowledged (a pop whose reply was lost, a claim that
-- raised) is handed out again first: it is in no queue, so nobody else would ever take it.
for t = 1, ntasks do
  if taken >= count then break end
  local base = (t - 1) * per
  local room = math.min(count - taken, limit[t])
  if room > 0 then
    local mine = redis.call('LRANGE', KEYS[base + 4], 0, room - 1)
    for _, e in ipairs(mine) do table.insert(out[t], e) end
    taken = taken + #mine
  end
end
local share = math.max(1, math.floor(count / ntasks))
for t = 1, ntasks do
  if taken >= count then break end
  taken = taken + take(t, math.min(share, count - taken))
end
for t = 1, ntasks do
  if taken >= count then break end
  taken = taken + take(t, count - taken)
end
return out
"""

# KEYS: queue, dispatched hash. ARGV: notify channel, entries "<id>:<cid>" joined by ",". Records and queues the
# entries atomically (a record without its entry would hide a lost job from the sweeper), then wakes idle
# workers. One joined argument instead of thousands keeps the client's packing cheap.
_DISPATCH = """
local entries, record = {}, {}
for id, cid in string.gmatch(ARGV[2], '(%d+):(%d+)') do
  entries[#entries + 1] = id .. ':' .. cid
  record[#record + 1] = id
  record[#record + 1] = cid
  if #record >= 4000 then
    redis.call('HSET', KEYS[2], unpack(record))
    record = {}
  end
end
if #record > 0 then redis.call('HSET', KEYS[2], unpack(record)) end
for i = 1, #entries, 4000 do
  redis.call('RPUSH', KEYS[1], unpack(entries, i, math.min(i + 3999, #entries)))
end
redis.call('PUBLISH', ARGV[1], '1')
return #entries
"""

# KEYS: a zset (q:hi or q:lo), dispatched hash, sequence. ARGV: notify channel, entries "<id>:<cid>:<priority>"
# joined by ",". Like _DISPATCH, but each entry is scored (100 - priority) * SPAN + sequence: one INCRBY numbers
# the whole batch in order. A score is written with %.0f, as an integer, whatever number format the server's Lua
# uses (stock Lua 5.1's %.14g would round a 15-digit score; Redis 7 writes it exactly either way). ZADD NX: an
# entry already queued keeps its place. The sequence is taken modulo SPAN; it would wrap after 2**40 entries,
# when first in, first out within one priority would be broken once, never priority.
_DISPATCH_SCORED = """
local ids, cids, prios = {}, {}, {}
for id, cid, p in string.gmatch(ARGV[2], '(%d+):(%d+):(%-?%d+)') do
  ids[#ids + 1], cids[#cids + 1], prios[#prios + 1] = id, cid, tonumber(p)
end
if #ids == 0 then return 0 end
local first = redis.call('INCRBY', KEYS[3], #ids) - #ids
local record, scored = {}, {}
for i = 1, #ids do
  record[#record + 1] = ids[i]
  record[#record + 1] = cids[i]
  scored[#scored + 1] = string.format('%.0f', (100 - prios[i]) * SPAN + (first + i) % SPAN)
  scored[#scored + 1] = ids[i] .. ':' .. cids[i]
  if #record >= 4000 then
    redis.call('HSET', KEYS[2], unpack(record))
    redis.call('ZADD', KEYS[1], 'NX', unpack(scored))
    record, scored = {}, {}
  end
end
if #record > 0 then
  redis.call('HSET', KEYS[2], unpack(record))
  redis.call('ZADD', KEYS[1], 'NX', unpack(scored))
end
redis.call('PUBLISH', ARGV[1], '1')
return #ids
""".replace("SPAN", str(SPAN))

# KEYS: inflight list, dispatched hash, inflight set. ARGV: worker, then the entries taken.
# Acknowledge exactly these entries: each leaves the in-flight list together with its record (if the record is
# still at that cid) — never the whole list, which may hold entries of a pop whose reply was lost. A malformed
# entry just leaves the list. A list left empty takes the worker out of the task's set.
_ACK = """
for i = 2, #ARGV do
  redis.call('LREM', KEYS[1], 1, ARGV[i])
  local id, cid = string.match(ARGV[i], '^(%d+):(%d+)$')
  if id and redis.call('HGET', KEYS[2], id) == cid then redis.call('HDEL', KEYS[2], id) end
end
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[1]) end
return 1
"""

# KEYS: inflight list, q:hi, inflight set. ARGV: worker. Put a dead worker's entries back in front of every
# queue, in the order popped: scores -n … -1 sort before any priority's (>= 0). Their priority is not in the entry;
# they were the first to run when popped.
_RECOVER = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i = 1, #items do redis.call('ZADD', KEYS[2], 'NX', i - #items - 1, items[i]) end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[1])
return #items
"""

# KEYS: the old band lists (legacy_keys), q:hi, q:lo. ARGV: the most to move, then each band's priority
# (LEGACY_BANDS). Moves entries of the five-band layout into the zsets, each band at its priority and ahead of
# the entries of that priority dispatched since (score (100 - priority) * SPAN - remaining + i < any sequence
# >= 1), in band order. Atomic: an entry leaves its list as it enters its zset, and an old worker still popping
# the band lists takes it either before or not at all. The record (dispatched hash) is left as it is: the entry
# is still queued. Returns how many it moved; the caller calls again while that is the most.
_MIGRATE = """
local budget = tonumber(ARGV[1])
local moved = 0
for b = 1, #KEYS - 2 do
  local priority = tonumber(ARGV[1 + b])
  local dest = priority > 0 and KEYS[#KEYS - 1] or KEYS[#KEYS]
  local remaining = redis.call('LLEN', KEYS[b])
  if remaining > 0 and budget > moved then
    local items = redis.call('LPOP', KEYS[b], math.min(remaining, budget - moved))
    local scored = {}
    for i, e in ipairs(items) do
      scored[#scored + 1] = string.format('%.0f', (100 - priority) * SPAN - remaining + i - 1)
      scored[#scored + 1] = e
    end
    redis.call('ZADD', dest, 'NX', unpack(scored))
    moved = moved + #items
  end
end
return moved
""".replace("SPAN", str(SPAN))
MIGRATE_BATCH = 2000
MIGRATE_CALLS = 50  # a sweep moves at most this many batches per task; the next sweep goes on


class RedisDispatcher(Dispatcher):
    name = "redis"

    def __init__(self, client: Redis, *, global_prefix: str, alive_ttl: float = 5.0) -> None:
        self.client = client
        self.global_prefix = global_prefix
        self.alive_ttl_ms = int(alive_ttl * 1000)
        self._dispatch = client.register_script(_DISPATCH)
        self._pop = client.register_script(_POP)
        self._ack = client.register_script(_ACK)
        self._recover = client.register_script(_RECOVER)
        self._dispatch_scored = client.register_script(_DISPATCH_SCORED)
        self._migrate = client.register_script(_MIGRATE)
        self._pubsub: Any = None
        self._subscribed: tuple[str, ...] = ()
        self._epoch: bytes | str | None = None
        self._turn = 0

    # -- keys
    def alive_key(self, worker: str) -> str:
        return f"{self.global_prefix}:alive:{worker}"

    @property
    def epoch_key(self) -> str:
        return f"{self.global_prefix}:epoch"

    # -- producer side
    def dispatch(self, items: Sequence[Dispatchable], *, prefixes: dict[str, str] | None = None) -> None:
        """Record and queue ``items``; ``prefixes`` gives each task's key prefix (the outbox and the sweeper
        resolve them), else the global prefix."""
        if not items:
            return
        from ..conf import get_settings

        default_prefix = get_settings().key_prefix
        groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
        keys: dict[tuple[str, int], tuple[str, ...]] = {}  # a batch has one or a few (task, queue) pairs
        for item in items:
            queue = queue_of(item.priority)
            key = keys.get((item.task, queue))
            if key is None:
                prefix = (prefixes or {}).get(item.task) or default_prefix
                key = keys[(item.task, queue)] = (notify_channel(prefix, item.task),
                                                  queue_keys(prefix, item.task)[queue],
                                                  dispatched_key(prefix, item.task),
                                                  *(() if queue == DEFAULT else (sequence_key(prefix, item.task),)))
            if queue == DEFAULT:
                groups[key].append(f"{item.id}:{item.cid}")
            else:  # push validates -100 … 100; clamped so that a score never leaves its queue's range
                groups[key].append(f"{item.id}:{item.cid}:{max(-100, min(100, item.priority))}")
        try:
            if len(groups) == 1:
                [(group, entries)] = groups.items()
                self._dispatch_group(group, entries)
                return
            pipe = self.client.pipeline(transaction=False)
            for group, entries in groups.items():
                self._dispatch_group(group, entries, pipe)
            pipe.execute()
        except RedisError as exc:
            raise DispatchError(f"could not dispatch {len(items)} job(s) to Redis: {exc}") from exc

    def _dispatch_group(self, group: tuple[str, ...], entries: list[str], pipe: Any = None) -> None:
        """``group`` is (channel, queue, record[, sequence]): a sequence means a zset, scored by _DISPATCH_SCORED."""
        script = self._dispatch if len(group) == 3 else self._dispatch_scored
        script(keys=list(group[1:]), args=[group[0], ",".join(entries)], client=pipe)

    # -- consumer side
    def _subscribe(self, sources: Sequence[Source]) -> None:
        channels = tuple(sorted(notify_channel(s.key_prefix, s.task) for s in sources))
        if self._pubsub is not None and channels == self._subscribed:
            return
        self._close_pubsub()
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(*channels)
        self._pubsub, self._subscribed = pubsub, channels

    def _close_pubsub(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                self._pubsub.close()
        self._pubsub, self._subscribed = None, ()

    def wait(self, sources: Sequence[Source], timeout: float) -> None:
        try:
            self._subscribe(sources)
            if self._pubsub.get_message(timeout=timeout) is not None:
                while self._pubsub.get_message(timeout=0) is not None:
                    pass
        except (RedisError, OSError) as exc:
            self._close_pubsub()
            raise DispatchError(f"lost the Redis subscription: {exc}") from exc

    def pop(self, sources: Sequence[Source], count: int, worker: str,
            limits: Mapping[str, int] | None = None) -> dict[Source, list[Any]]:
        """Move up to ``count`` entries into ``worker``'s in-flight lists, at most ``limits[task]`` of a task;
        each call starts with the next task, so a backlog on one task never starves another."""
        if len(sources) > 1:
            self._turn = (self._turn + 1) % len(sources)
            sources = [*sources[self._turn:], *sources[:self._turn]]
        keys: list[str] = []
        for s in sources:
            keys += queue_keys(s.key_prefix, s.task)
            keys += [inflight_key(s.key_prefix, s.task, worker), inflight_set_key(s.key_prefix, s.task),
                     dispatched_key(s.key_prefix, s.task)]
        try:
            lists = self._pop(keys=keys, args=[count, len(sources), worker, self.alive_key(worker),
                                               self.alive_ttl_ms,
                                               *(limit_of(limits, s.task, count) for s in sources)])
        except RedisError as exc:
            raise DispatchError(f"could not pop from Redis: {exc}") from exc
        return {s: entries for s, entries in zip(sources, lists, strict=True) if entries}

    def fetch(self, sources: Sequence[Source], count: int, *, worker: str, claim: Claim,
              deliver: Deliver, limits: Mapping[str, int] | None = None) -> bool:
        """Take entries into ``worker``'s in-flight lists, claim each task's through ``claim`` (the state
        machine's verb), ``deliver`` what was won at once, then acknowledge exactly those entries.

        The adversary's view: a pop whose reply is lost leaves its entries in the in-flight list, and the next
        take hands them out again first (pass 0 of the script), so they are claimed then. A claim that raises
        (the database down, a deadlock) leaves its task's entries in the list for the next take, while the jobs
        of the tasks claimed before it are already delivered. An ack that fails leaves entries that the next
        take hands out again; their claims then fail (the cid moved on) and they are acknowledged. A worker
        killed anywhere in between leaves its list to the sweeper's recovery, which puts it back in the queue.
        """
        popped = self.pop(sources, count, worker, limits)
        for source, entries in popped.items():
            refs = []
            for raw in entries:
                ref = decode(raw)
                if ref is None:
                    log.error("meepo: dropped a malformed Redis entry %r from %s", raw[:100], source.task,
                              extra={"task": source.task})
                else:
                    refs.append(ref)
            won = claim(source, refs) if refs else []
            deliver(in_order_of(won, refs))  # the order popped (priority order), not the database's
            dropped = len(refs) - len(won)
            if dropped:
                log.debug("meepo: %s: %d entr(y/ies) were stale or duplicated and were dropped", source.task,
                          dropped, extra={"task": source.task})
            try:
                self.ack(source, entries, worker)
            except DispatchError as exc:  # handed out again by the next take, and acknowledged then
                log.warning("meepo: could not acknowledge taken entries: %s", exc)
        return bool(popped)

    def ack(self, source: Source, entries: Sequence[Any], worker: str) -> None:
        """Remove exactly ``entries`` from ``worker``'s in-flight list of ``source``, with their records."""
        args: list[Any] = [worker, *entries]
        try:
            self._ack(keys=[inflight_key(source.key_prefix, source.task, worker),
                            dispatched_key(source.key_prefix, source.task),
                            inflight_set_key(source.key_prefix, source.task)], args=args)
        except RedisError as exc:
            raise DispatchError(f"could not acknowledge taken entries: {exc}") from exc

    def heartbeat(self, worker: str) -> None:
        try:
            self.client.set(self.alive_key(worker), b"1", px=self.alive_ttl_ms)
        except RedisError as exc:
            raise DispatchError(f"could not refresh the worker's alive key: {exc}") from exc

    def worker_stopped(self, worker: str) -> None:
        with contextlib.suppress(RedisError):
            self.client.delete(self.alive_key(worker))

    # -- sweeper side
    def missing(self, task: str, key_prefix: str, refs: Sequence[Ref]) -> list[Ref]:
        if not refs:
            return []
        try:
            values = self.client.hmget(dispatched_key(key_prefix, task), [str(r.id) for r in refs])
        except RedisError as exc:
            raise DispatchError(f"could not read what Redis holds: {exc}") from exc
        return [r for r, v in zip(refs, values, strict=True) if v is None or v != str(r.cid).encode()]

    def length(self, task: str, key_prefix: str) -> int:
        """Entries waiting in the three queues, and in old band lists not yet moved (see ``upgrade``)."""
        hi, default, lo = queue_keys(key_prefix, task)
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.zcard(hi)
            pipe.llen(default)
            pipe.zcard(lo)
            for key in legacy_keys(key_prefix, task):
                pipe.llen(key)
            return int(sum(pipe.execute()))
        except RedisError as exc:
            raise DispatchError(f"could not read queue lengths: {exc}") from exc

    def upgrade(self, source: Source) -> int:
        """Move what the band lists of before exact priority hold into ``q:hi`` and ``q:lo``; returns how many.

        Called by ``recover`` on every sweep, so what old producers or workers still put there during a rolling
        upgrade moves too; with none left it costs one script call of four LLENs of missing keys. Each call of
        the script is atomic and moves at most MIGRATE_BATCH entries (Redis is never blocked for long); if a reply
        is lost, what it moved is queued in the zsets and the next sweep moves the rest. The records are untouched,
        so the sweeper never dispatches a moved entry twice, and never misses one.
        """
        keys = [*legacy_keys(source.key_prefix, source.task), *(queue_keys(source.key_prefix, source.task)[q]
                                                                 for q in (HI, LO))]
        args = [MIGRATE_BATCH, *(priority for _, priority in LEGACY_BANDS)]
        total = 0
        for _ in range(MIGRATE_CALLS):  # bounded: old producers still pushing never hold up a sweep
            moved = int(self._migrate(keys=keys, args=args))
            total += moved
            if moved < MIGRATE_BATCH:
                break
        if total:
            log.warning("meepo: %s: moved %d entr(y/ies) from the old priority bands to the exact-priority queues",
                        source.task, total, extra={"task": source.task})
            self.client.publish(notify_channel(source.key_prefix, source.task), b"1")
        return total

    def recover(self, sources: Sequence[Source]) -> int:
        moved = 0
        try:
            for s in sources:
                self.upgrade(s)
                for raw_worker in self.client.smembers(inflight_set_key(s.key_prefix, s.task)):
                    worker = raw_worker.decode() if isinstance(raw_worker, bytes) else str(raw_worker)
                    if self.client.exists(self.alive_key(worker)):
                        continue
                    n = int(self._recover(keys=[inflight_key(s.key_prefix, s.task, worker),
                                                queue_keys(s.key_prefix, s.task)[HI],
                                                inflight_set_key(s.key_prefix, s.task)], args=[worker]))
                    if n:
                        log.warning("meepo: %s: gave back %d entr(y/ies) popped by dead worker %s", s.task, n,
                                    worker, extra={"task": s.task})
                        self.client.publish(notify_channel(s.key_prefix, s.task), b"1")
                    moved += n
        except RedisError as exc:
            raise DispatchError(f"could not recover in-flight entries: {exc}") from exc
        return moved

    def lost_everything(self) -> bool:
        """True when the epoch key vanished or changed since last asked (Redis flushed or restarted empty)."""
        try:
            current = self.client.get(self.epoch_key)
            if current is None:
                fresh = uuid.uuid4().hex.encode()
                self.client.set(self.epoch_key, fresh, nx=True)
                current = self.client.get(self.epoch_key)
        except RedisError as exc:
            raise DispatchError(f"could not read the epoch key: {exc}") from exc
        changed = self._epoch is not None and current != self._epoch
        first = self._epoch is None
        self._epoch = current
        return changed or first

    def close(self) -> None:
        self._close_pubsub()
