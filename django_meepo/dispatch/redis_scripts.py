"""The Redis dispatcher's Lua scripts (dispatch/redis.py calls them; redis_keys.py names their keys).

Each script touches the keys of one task, all under its hash tag ``{P:T}``, or (the pop) of tasks whose tags share
one Cluster slot; only ``_UPGRADE`` and the untagged recovery touch keys of the layout of before, on a standalone
Redis (or behind Sentinel), where any keys may meet in one script.
"""

from __future__ import annotations

from .redis_keys import SPAN

# KEYS per task: its three queues (queue_keys: hi zset, default list, lo zset), inflight list, inflight set,
# dispatched hash, the worker's alive key for the task. ARGV: count, ntasks, worker, alive ttl ms, then each task's
# limit (the most to hand out for it). All keys of one call are in one slot on a Cluster (the caller groups tasks
# by slot). Every task's alive key is refreshed first. Pass 0 hands out again what is already in this worker's
# in-flight lists; pass 1 takes a fair share from each task; pass 2 fills what is left in task order. An entry whose
# cid is not the one recorded in the dispatched hash is stale (its job was repushed, or claimed through a duplicate)
# and is dropped here, without a trip to the database; malformed entries go to the client, which logs and drops
# them. A call examines at most ten entries per entry wanted, so a long run of stale entries never blocks Redis.
# A queue is asked again only while it answered all that was asked: the default case (priority 0 only) costs one
# ZPOPMIN of a missing q:hi, the LPOPs it needs, and a ZPOPMIN of q:lo only when q:2 ran out.
_POP = """
local count = tonumber(ARGV[1])
local ntasks = tonumber(ARGV[2])
local per = 7
local out = {}
local limit = {}
for t = 1, ntasks do
  out[t] = {}
  limit[t] = tonumber(ARGV[4 + t]) or count
  redis.call('SET', KEYS[(t - 1) * per + 7], '1', 'PX', ARGV[4])
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

# KEYS: inflight list, q:hi, inflight set, the worker's alive key[, the record the entries are in, the record to
# move them to]. ARGV: worker. A worker whose alive key exists is alive: -1, nothing touched (checked here, in the
# same atomic call, so a worker that came back between the sweeper's look and this call keeps its entries).
# Otherwise put the dead worker's entries back in front of every queue, in the order popped: scores -n … -1 sort
# before any priority's (>= 0). Their priority is not in the entry; they were the first to run when popped. With
# two records (the untagged layout's in-flight lists, see _UPGRADE) each entry's record moves with it.
_RECOVER = """
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i = 1, #items do
  redis.call('ZADD', KEYS[2], 'NX', i - #items - 1, items[i])
  if KEYS[6] then
    local id, cid = string.match(items[i], '^(%d+):(%d+)$')
    if id and redis.call('HGET', KEYS[5], id) == cid then
      redis.call('HSETNX', KEYS[6], id, cid)
      redis.call('HDEL', KEYS[5], id)
    end
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[1])
return #items
"""

# KEYS: 1-3 the untagged q:hi, q:2, q:lo; 4-7 the old band lists (legacy_keys); 8 the untagged record; 9 the
# untagged sequence; 10 the untagged in-flight set; 11-13 the tagged q:hi, q:2, q:lo; 14 the tagged record; 15 the
# tagged sequence. ARGV: the most to move, then each band's priority (LEGACY_BANDS). Standalone and Sentinel only
# (the keys span slots). Moves what the layouts of before still hold into the tagged keys, ahead of what was
# dispatched there since: the untagged zsets' entries keep their scores; the untagged q:2 goes in front of the
# tagged q:2 in its order; each old band list goes into a zset at its priority and ahead of the entries of that
# priority (score (100 - priority) * SPAN - remaining + i < any sequence >= 1). Each entry's record moves with it
# (HSETNX: a record the tagged layout already holds is newer). The untagged sequence is added to the tagged one,
# so entries scored from now on sort after the moved ones. Atomic: an entry leaves its old key as it enters its new
# one, and an old worker still popping the old keys takes it either before or not at all. When the old queues and
# the old in-flight set are empty, what is left of the untagged record stands for nothing queued: it is deleted.
# Returns how many entries it moved; the caller calls again while that is the most.
_UPGRADE = """
local budget = tonumber(ARGV[1])
local moved = 0
local function record(e)
  local id, cid = string.match(e, '^(%d+):(%d+)$')
  if id and redis.call('HGET', KEYS[8], id) == cid then
    redis.call('HSETNX', KEYS[14], id, cid)
    redis.call('HDEL', KEYS[8], id)
  end
end
local seq = tonumber(redis.call('GET', KEYS[9]) or '0')
if seq and seq > 0 then
  redis.call('INCRBY', KEYS[15], seq)
  redis.call('DEL', KEYS[9])
end
for _, q in ipairs({1, 3}) do
  if budget > moved then
    local popped = redis.call('ZPOPMIN', KEYS[q], budget - moved)
    for i = 1, #popped, 2 do
      redis.call('ZADD', KEYS[10 + q], 'NX', popped[i + 1], popped[i])
      record(popped[i])
      moved = moved + 1
    end
  end
end
if budget > moved then
  local items = redis.call('RPOP', KEYS[2], budget - moved)
  if items then
    redis.call('LPUSH', KEYS[12], unpack(items))
    for _, e in ipairs(items) do record(e) end
    moved = moved + #items
  end
end
for b = 1, 4 do
  local priority = tonumber(ARGV[1 + b])
  local dest = priority > 0 and KEYS[11] or KEYS[13]
  local remaining = redis.call('LLEN', KEYS[3 + b])
  if remaining > 0 and budget > moved then
    local items = redis.call('LPOP', KEYS[3 + b], math.min(remaining, budget - moved))
    local scored = {}
    for i, e in ipairs(items) do
      scored[#scored + 1] = string.format('%.0f', (100 - priority) * SPAN - remaining + i - 1)
      scored[#scored + 1] = e
      record(e)
    end
    redis.call('ZADD', dest, 'NX', unpack(scored))
    moved = moved + #items
  end
end
if redis.call('EXISTS', KEYS[8]) == 1
    and redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[10]) == 0 then
  redis.call('DEL', KEYS[8])
end
return moved
""".replace("SPAN", str(SPAN))
UPGRADE_BATCH = 2000
UPGRADE_CALLS = 50  # a sweep moves at most this many batches per task; the next sweep goes on
