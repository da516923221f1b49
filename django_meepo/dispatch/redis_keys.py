"""The Redis key layout: every key of a task carries the hash tag ``{P:T}``, so each task's keys share one slot.

``P`` is the task's key prefix (default ``MEEPO["KEY_PREFIX"]`` = ``"meepo"``), ``T`` the task name, ``W`` a
worker id. On Redis Cluster a hash tag makes every key of a task hash to one slot, so each task's Lua scripts touch
one slot (a script may only touch keys of one slot); on a standalone Redis or behind Sentinel the tag changes
nothing but the names, so there is one layout for all three.

| key                          | type    | holds                                                                 |
|------------------------------|---------|-----------------------------------------------------------------------|
| ``{P:T}:q:hi``               | zset    | due entries of priority 1 … 100, scored by priority, then sequence    |
| ``{P:T}:q:2``                | list    | due entries of priority 0 (the default): first in, first out          |
| ``{P:T}:q:lo``               | zset    | due entries of priority -100 … -1, scored like ``q:hi``               |
| ``{P:T}:seq``                | string  | the sequence that keeps ``q:hi`` and ``q:lo`` first in, first out     |
| ``{P:T}:dispatched``         | hash    | id → cid of every entry in a queue or in flight: what Redis holds     |
| ``{P:T}:inflight:W``         | list    | entries worker W popped and has not yet claimed (closes the pop→claim gap) |
| ``{P:T}:inflight``           | set     | workers that may have an in-flight list for T                         |
| ``{P:T}:alive:W``            | string  | present while worker W consumes T (short TTL, refreshed every second) |
| ``{P:T}:epoch``              | string  | a random value; gone when the node holding T's slot lost its data     |
| ``{P:T}:rate``, ``…:rate:K`` | hash    | the task's token bucket and each concurrency key's (ratelimit.py)     |
| ``P:T:notify``               | channel | a message per dispatch, so idle workers wake at once (not a key)      |

The alive and epoch keys are per task (they were global, ``P:alive:W`` and ``P:epoch``): a worker's pop sets the
alive key of each task it pops from in the same script, and on Cluster one node may lose its data (a failover
before replication) while the others keep theirs.

Before the hash tags the same keys were named ``P:T:…`` (``untagged_*`` below; ``P:alive:W`` global); and before
exact priority there were five band lists ``P:T:q:0`` … ``P:T:q:4`` (``legacy_keys``). The sweeper's ``upgrade``
moves what the untagged keys still hold into the tagged ones (standalone and Sentinel: untagged keys never
existed on a Cluster, which django-meepo did not support before).
"""

from __future__ import annotations

# Scores: (100 - priority) * SPAN + sequence. Priorities are -100 … 100, so a score stays below 201 * 2**40 < 2**53.
SPAN = 2**40
HI, DEFAULT, LO = 0, 1, 2  # indexes into queue_keys, in the order a pop takes them
# The old band lists, and the priority each one's entries are moved in at: the highest of its band, so an old
# entry never runs later than its priority would have had it run. Band 2 (priority 0) is the untagged default list.
LEGACY_BANDS = ((0, 100), (1, 49), (3, -1), (4, -50))


def tag(prefix: str, task: str) -> str:
    """The hash tag every key of ``task`` starts with: ``{P:T}``."""
    return f"{{{prefix}:{task}}}"


def queue_of(priority: int) -> int:
    """Which of ``queue_keys`` an entry of ``priority`` goes to."""
    return HI if priority > 0 else DEFAULT if priority == 0 else LO


def queue_keys(prefix: str, task: str) -> list[str]:
    """The task's queues in the order a pop takes them: ``q:hi`` (zset), ``q:2`` (list, priority 0), ``q:lo``."""
    t = tag(prefix, task)
    return [f"{t}:q:hi", f"{t}:q:2", f"{t}:q:lo"]


def sequence_key(prefix: str, task: str) -> str:
    return f"{tag(prefix, task)}:seq"


def dispatched_key(prefix: str, task: str) -> str:
    return f"{tag(prefix, task)}:dispatched"


def inflight_key(prefix: str, task: str, worker: str) -> str:
    return f"{tag(prefix, task)}:inflight:{worker}"


def inflight_set_key(prefix: str, task: str) -> str:
    return f"{tag(prefix, task)}:inflight"


def alive_key(prefix: str, task: str, worker: str) -> str:
    return f"{tag(prefix, task)}:alive:{worker}"


def epoch_key(prefix: str, task: str) -> str:
    return f"{tag(prefix, task)}:epoch"


def rate_key(prefix: str, task: str) -> str:
    """The task's token bucket; a concurrency key ``K``'s bucket is ``rate_key(…) + ":" + K``."""
    return f"{tag(prefix, task)}:rate"


def notify_channel(prefix: str, task: str) -> str:
    return f"{prefix}:{task}:notify"


# -- the untagged layout of before (moved by RedisDispatcher.upgrade)
def untagged_queue_keys(prefix: str, task: str) -> list[str]:
    return [f"{prefix}:{task}:q:hi", f"{prefix}:{task}:q:2", f"{prefix}:{task}:q:lo"]


def legacy_keys(prefix: str, task: str) -> list[str]:
    """The band lists of before exact priority that are not ``q:2`` (see ``LEGACY_BANDS``); always untagged."""
    return [f"{prefix}:{task}:q:{band}" for band, _ in LEGACY_BANDS]


def untagged_keys(prefix: str, task: str) -> dict[str, str]:
    """The untagged record, sequence and in-flight set of ``task``."""
    return {"dispatched": f"{prefix}:{task}:dispatched", "seq": f"{prefix}:{task}:seq",
            "inflight": f"{prefix}:{task}:inflight"}


def untagged_inflight_key(prefix: str, task: str, worker: str) -> str:
    return f"{prefix}:{task}:inflight:{worker}"


def untagged_alive_key(global_prefix: str, worker: str) -> str:
    """The global alive key workers of before the hash tags refresh (``G:alive:W``)."""
    return f"{global_prefix}:alive:{worker}"
