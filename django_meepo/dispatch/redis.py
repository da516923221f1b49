"""The Redis dispatcher. Redis carries job ids and cids only — never payloads — and is parsed strictly.

The key layout is in ``redis_keys.py`` (every key of a task under the hash tag ``{P:T}``), the Lua scripts in
``redis_scripts.py``. The same code runs on a standalone Redis, behind Sentinel and on Redis Cluster
(``MEEPO["REDIS_CLUSTER"]``, docs/dispatch.md): each script touches the keys of one slot, and a pop over several
tasks makes one call per slot their tags fall in (one call in all on a standalone Redis, as before).

Exact priority: a pop takes from ``q:hi`` (lowest score first), then ``q:2``, then ``q:lo``. A score is
``(100 - priority) * 2**40 + sequence``, so a higher priority pops first and one priority is first in, first out;
every score is an integer below 2**53, exact in a double. The default priority, by far the most common, costs what
it always did: one RPUSH, one LPOP. The sweeper's ``recover`` moves what the layouts of before still hold (the
untagged keys ``P:T:…``, the five band lists ``P:T:q:0`` … ``P:T:q:4``) into the tagged keys (``upgrade``). A pop
takes a fair share from each of a worker's tasks before filling up from any.

The record of what was dispatched (``{P:T}:dispatched``) lives in Redis beside the lists, so both vanish together:
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
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisError

from ..exceptions import DispatchError
from ..states import Dispatchable, Ref
from . import redis_scripts as scripts
from .base import Claim, Deliver, Dispatcher, Source, in_order_of, limit_of
from .redis_keys import (
    DEFAULT,
    HI,
    LEGACY_BANDS,
    LO,
    SPAN,
    alive_key,
    dispatched_key,
    epoch_key,
    inflight_key,
    inflight_set_key,
    legacy_keys,
    notify_channel,
    queue_keys,
    queue_of,
    sequence_key,
    tag,
    untagged_alive_key,
    untagged_inflight_key,
    untagged_keys,
    untagged_queue_keys,
)

__all__ = ["DEFAULT", "HI", "LEGACY_BANDS", "LO", "SPAN", "RedisDispatcher", "alive_key", "decode",
           "dispatched_key", "encode", "epoch_key", "inflight_key", "inflight_set_key", "legacy_keys",
           "notify_channel", "queue_keys", "queue_of", "queued_entries", "sequence_key", "slot_groups", "tag"]

log = logging.getLogger(__name__)
UPGRADE_BATCH = scripts.UPGRADE_BATCH
UPGRADE_CALLS = scripts.UPGRADE_CALLS


def queued_entries(client: Redis, prefix: str, task: str) -> list[bytes]:
    """Every entry queued for ``task``, in the order a pop would take them (for tests and operators)."""
    hi, default, lo = queue_keys(prefix, task)
    pipe = client.pipeline(transaction=False)
    pipe.zrange(hi, 0, -1)
    pipe.lrange(default, 0, -1)
    pipe.zrange(lo, 0, -1)
    return [e for part in pipe.execute() for e in part]


def slot_groups(sources: Sequence[Source], cluster: bool) -> list[list[Source]]:
    """``sources`` in groups whose keys share one Cluster slot, in the order of each group's first source; one
    group on a standalone Redis (any keys may meet in one script there)."""
    if not cluster:
        return [list(sources)]
    groups: dict[int, list[Source]] = {}
    for s in sources:
        groups.setdefault(key_slot(tag(s.key_prefix, s.task).encode()), []).append(s)
    return list(groups.values())


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


class RedisDispatcher(Dispatcher):
    name = "redis"

    def __init__(self, client: Redis | RedisCluster, *, global_prefix: str, alive_ttl: float = 5.0) -> None:
        self.client = client
        self.cluster = isinstance(client, RedisCluster)
        self.global_prefix = global_prefix
        self.alive_ttl_ms = int(alive_ttl * 1000)
        self._dispatch = client.register_script(scripts._DISPATCH)
        self._pop = client.register_script(scripts._POP)
        self._ack = client.register_script(scripts._ACK)
        self._recover = client.register_script(scripts._RECOVER)
        self._dispatch_scored = client.register_script(scripts._DISPATCH_SCORED)
        self._upgrade = client.register_script(scripts._UPGRADE)
        self._pubsub: Any = None
        self._subscribed: tuple[str, ...] = ()
        self._epochs: dict[tuple[str, str], bytes | str | None] = {}
        self._turn = 0
        self._popped_from: dict[tuple[str, str], None] = {}  # (prefix, task) popped from: heartbeat's alive keys

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
            if len(groups) == 1 or self.cluster:  # a Cluster pipeline cannot load a script: one call per group
                for group, entries in groups.items():
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
        each call starts with the next task, so a backlog on one task never starves another. One script call per
        Cluster slot the tasks' tags fall in (one on a standalone Redis), each for what the calls before left."""
        if len(sources) > 1:
            self._turn = (self._turn + 1) % len(sources)
            sources = [*sources[self._turn:], *sources[:self._turn]]
        self._popped_from.update(dict.fromkeys((s.key_prefix, s.task) for s in sources))
        out: dict[Source, list[Any]] = {}
        left = count
        failed: RedisError | None = None
        # Each slot group once (the script's pass 0 hands out a worker's in-flight entries again: a second call
        # in one pop would hand out what the first just took); the rotation above decides which group is first.
        for group in slot_groups(sources, self.cluster):
            if left <= 0:
                break
            try:
                lists = self._pop_group(group, left, worker, limits)
            except RedisError as exc:  # one Cluster slot unreachable (a failover): the others still serve
                failed = failed or exc
                continue
            for s, entries in zip(group, lists, strict=True):
                if entries:
                    out[s] = entries
                    left -= len(entries)
        if failed is not None:
            if not out:
                raise DispatchError(f"could not pop from Redis: {failed}") from failed
            log.warning("meepo: could not pop from one Redis Cluster slot (its tasks are asked again next time): %s",
                        failed)
        return out

    def _pop_group(self, group: Sequence[Source], count: int, worker: str,
                   limits: Mapping[str, int] | None) -> list[list[Any]]:
        keys: list[str] = []
        for s in group:
            keys += queue_keys(s.key_prefix, s.task)
            keys += [inflight_key(s.key_prefix, s.task, worker), inflight_set_key(s.key_prefix, s.task),
                     dispatched_key(s.key_prefix, s.task), alive_key(s.key_prefix, s.task, worker)]
        return list(self._pop(keys=keys, args=[count, len(group), worker, self.alive_ttl_ms,
                                               *(limit_of(limits, s.task, count) for s in group)]))

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
        """Refresh the worker's alive key of each task it popped from (a ping before its first pop, so a
        heartbeat always asks Redis: the failover dispatcher probes with it)."""
        try:
            if not self._popped_from:
                self.client.ping()
                return
            pipe = self.client.pipeline(transaction=False)
            for prefix, task in self._popped_from:
                pipe.set(alive_key(prefix, task, worker), b"1", px=self.alive_ttl_ms)
            pipe.execute()
        except RedisError as exc:
            raise DispatchError(f"could not refresh the worker's alive keys: {exc}") from exc

    def worker_stopped(self, worker: str) -> None:
        with contextlib.suppress(RedisError):
            for prefix, task in self._popped_from:
                self.client.delete(alive_key(prefix, task, worker))

    # -- sweeper side
    def missing(self, task: str, key_prefix: str, refs: Sequence[Ref]) -> list[Ref]:
        if not refs:
            return []
        try:
            lacking = self._lacking(dispatched_key(key_prefix, task), refs)
            if lacking and not self.cluster:  # an old worker (untagged layout) may hold them: its record says so
                lacking = self._lacking(untagged_keys(key_prefix, task)["dispatched"], lacking)
        except RedisError as exc:
            raise DispatchError(f"could not read what Redis holds: {exc}") from exc
        return lacking

    def _lacking(self, record: str, refs: Sequence[Ref]) -> list[Ref]:
        values = self.client.hmget(record, [str(r.id) for r in refs])
        return [r for r, v in zip(refs, values, strict=True) if v is None or v != str(r.cid).encode()]

    def length(self, task: str, key_prefix: str) -> int:
        """Entries waiting in the three queues, and (standalone) in the keys of before not yet moved (``upgrade``)."""
        hi, default, lo = queue_keys(key_prefix, task)
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.zcard(hi)
            pipe.llen(default)
            pipe.zcard(lo)
            if not self.cluster:
                old_hi, old_default, old_lo = untagged_queue_keys(key_prefix, task)
                pipe.zcard(old_hi)
                pipe.llen(old_default)
                pipe.zcard(old_lo)
                for key in legacy_keys(key_prefix, task):
                    pipe.llen(key)
            return int(sum(pipe.execute()))
        except RedisError as exc:
            raise DispatchError(f"could not read queue lengths: {exc}") from exc

    def upgrade(self, source: Source) -> int:
        """Move what the layouts of before hold (the untagged ``P:T:…`` keys, the five band lists) into the tagged
        keys; returns how many entries. Standalone and Sentinel only: there were no untagged keys on a Cluster.

        Called by ``recover`` on every sweep, so what old producers still put there during a rolling upgrade moves
        too; with nothing left it costs one script call on missing keys. Each call of the script is atomic and
        moves at most UPGRADE_BATCH entries (Redis is never blocked for long); if a reply is lost, what it moved is
        queued in the tagged keys with its record and the next sweep moves the rest. A moved entry takes its record
        along, so the sweeper never dispatches it twice, and never misses one.
        """
        if self.cluster:
            return 0
        p, t = source.key_prefix, source.task
        old = untagged_keys(p, t)
        keys = [*untagged_queue_keys(p, t), *legacy_keys(p, t), old["dispatched"], old["seq"], old["inflight"],
                *queue_keys(p, t), dispatched_key(p, t), sequence_key(p, t)]
        args = [UPGRADE_BATCH, *(priority for _, priority in LEGACY_BANDS)]
        total = 0
        for _ in range(UPGRADE_CALLS):  # bounded: old producers still pushing never hold up a sweep
            moved = int(self._upgrade(keys=keys, args=args))
            total += moved
            if moved < UPGRADE_BATCH:
                break
        if total:
            log.warning("meepo: %s: moved %d entr(y/ies) from the Redis keys of an earlier version to today's",
                        t, total, extra={"task": t})
            self.client.publish(notify_channel(p, t), b"1")
        return total

    def recover(self, sources: Sequence[Source]) -> int:
        moved = 0
        try:
            for s in sources:
                self.upgrade(s)
                moved += self._recover_dead(s, untagged=False)
                if not self.cluster:
                    moved += self._recover_dead(s, untagged=True)
        except RedisError as exc:
            raise DispatchError(f"could not recover in-flight entries: {exc}") from exc
        return moved

    def _recover_dead(self, s: Source, *, untagged: bool) -> int:
        """Give back the in-flight lists of ``s``'s dead workers (``untagged``: workers of before the hash tags,
        whose lists and records are moved into the tagged keys)."""
        p, t = s.key_prefix, s.task
        members_key = untagged_keys(p, t)["inflight"] if untagged else inflight_set_key(p, t)
        moved = 0
        for raw_worker in self.client.smembers(members_key):
            worker = raw_worker.decode() if isinstance(raw_worker, bytes) else str(raw_worker)
            if untagged:
                keys = [untagged_inflight_key(p, t, worker), queue_keys(p, t)[HI], members_key,
                        untagged_alive_key(self.global_prefix, worker), untagged_keys(p, t)["dispatched"],
                        dispatched_key(p, t)]
            else:
                keys = [inflight_key(p, t, worker), queue_keys(p, t)[HI], members_key, alive_key(p, t, worker)]
            n = int(self._recover(keys=keys, args=[worker]))
            if n > 0:
                log.warning("meepo: %s: gave back %d entr(y/ies) popped by dead worker %s", t, n, worker,
                            extra={"task": t})
                self.client.publish(notify_channel(p, t), b"1")
                moved += n
        return moved

    def lost_everything(self, sources: Sequence[Source] = ()) -> bool:
        """True when the epoch key of one of ``sources`` vanished or changed since last asked (the Redis, or on a
        Cluster the node, holding its slot was flushed or restarted empty), and the first time a task is asked."""
        lost = False
        try:
            for s in sources:
                key = epoch_key(s.key_prefix, s.task)
                current = self.client.get(key)
                if current is None:
                    self.client.set(key, uuid.uuid4().hex.encode(), nx=True)
                    current = self.client.get(key)
                seen = self._epochs.get((s.key_prefix, s.task))
                lost = lost or seen is None or current != seen
                self._epochs[(s.key_prefix, s.task)] = current
        except RedisError as exc:
            raise DispatchError(f"could not read the epoch key: {exc}") from exc
        return lost

    def close(self) -> None:
        self._close_pubsub()
