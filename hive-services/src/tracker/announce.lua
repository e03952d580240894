-- Hive tracker, Redis store: upsert a peer and/or sample a swarm in one round trip.
-- Every key carries the swarm's hash tag {<content>}, so the script runs on one Redis Cluster slot.
--
-- KEYS[1]  hive:{c}:all        sorted set: peer id -> expiry (unix ms)
-- KEYS[2]  hive:{c}:info       hash: peer id -> peer JSON
-- KEYS[3]  hive:{c}:site:<s>   sorted set of the site (placeholder when ARGV[6] == '0')
-- KEYS[4]  hive:{c}:asn:<n>    sorted set of the AS (placeholder when ARGV[7] == '0')
-- ARGV[1] now (ms)   ARGV[2] expiry (ms; '0' = sample only)   ARGV[3] peer id   ARGV[4] peer JSON
-- ARGV[5] per_tier ('0' = upsert only)   ARGV[6] has site   ARGV[7] has AS   ARGV[8] key lifetime (ms)
-- Returns the sampled peers' JSON blobs (live entries only, no duplicates).
local now = tonumber(ARGV[1])
local exp = tonumber(ARGV[2])
local per = tonumber(ARGV[5])
local has_site = ARGV[6] == '1'
local has_asn = ARGV[7] == '1'

if exp > 0 then
  -- Lazy cleanup: forget this swarm's expired peers, in batches of 1000 (unpack's stack limit),
  -- at most 8000 per call so one call never blocks the server for long; O(log n) when none are.
  for _ = 1, 8 do
    local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)
    if #dead == 0 then
      break
    end
    redis.call('HDEL', KEYS[2], unpack(dead))
    redis.call('ZREM', KEYS[1], unpack(dead))
  end
  redis.call('ZADD', KEYS[1], exp, ARGV[3])
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
  for i, has in ipairs({has_site, has_asn}) do
    if has then
      local k = KEYS[2 + i]
      redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
      redis.call('ZADD', k, exp, ARGV[3])
      redis.call('PEXPIRE', k, ARGV[8])
    end
  end
end

local out = {}
if per <= 0 then
  return out
end
local seen = {}

-- Up to `per` more live peers from sorted set `key`, drawn uniformly by ZRANDMEMBER (twice as
-- many draws as needed, so stale index entries do not starve the tier).
local function pick(key)
  local target = #out + per
  local r = redis.call('ZRANDMEMBER', key, per * 2, 'WITHSCORES')
  local ids = {}
  for i = 1, #r, 2 do
    local id = r[i]
    if tonumber(r[i + 1]) > now and not seen[id] then
      seen[id] = true
      ids[#ids + 1] = id
    end
  end
  if #ids == 0 then
    return
  end
  local blobs = redis.call('HMGET', KEYS[2], unpack(ids))
  for i = 1, #blobs do
    if #out >= target then
      return
    end
    if blobs[i] then
      out[#out + 1] = blobs[i]
    end
  end
end

if has_site then
  pick(KEYS[3])
end
if #out < per and has_asn then
  pick(KEYS[4])
end
if #out < per then
  pick(KEYS[1])
end
return out
