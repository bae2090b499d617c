import type { RedisClient } from '../redis/client.ts';
import { ETA_PRIOR_KEY, QUEUE_REGISTRY_KEY, queueKeyList, queueKeys, seatMapVersionsKey } from '../redis/keys.ts';
import {
  ADMIT_BATCH,
  ADMITS_KEPT_MS,
  CLEANUP_BATCH,
  ETA_BUCKETS,
  ETA_CURVE_MS,
  ETA_EVIDENCE,
  ETA_GRID,
  ETA_COLD_FACTOR,
  ETA_COLD_MIN_MS,
  ETA_LIFE_WEIGHT,
  ETA_PRIOR,
  ETA_PRIOR_BLEND,
  ETA_PRIOR_DEATHS,
  ETA_PRIOR_EVERY_MS,
  ETA_PRIOR_GAP,
  ETA_PRIOR_HAZARD,
  ETA_PRIOR_OPEN,
  ETA_PRIOR_RISK,
  ETA_QUANTILES,
  ETA_RATIO,
  ETA_SAMPLE,
  ETA_SHIFT,
  SOLD_OUT_POLL_MS,
  HEAD_NOTICE_MS,
  HEAD_PLACES,
  LIFE_TAU_MS,
  INVENTORY_CLAIM_MS,
  INVENTORY_MAX_AGE_MS,
  INVENTORY_MIN_GAP_MS,
  LINE_PRUNE_MS,
  OPENING_SPREAD_MS,
  type EnterOptions,
  type EnterResult,
  type GateState,
  type Inventory,
  type LineState,
  type QueueSettings,
  type QueueSettingsPatch,
  type QueueStats,
  type QueueStore,
  type StoreNow,
  randomFraction,
  RATE_WINDOW_MS,
  type TicketStatus,
  type TokenState,
} from './queue.store.ts';

/*
 * Every change is one Lua script over one concert's keys (one Cluster slot), so Redis runs it
 * whole and alone: two API processes settling the same line at once run one after the other,
 * and the admission loop reads the ACTIVE count and fills up to maxActive in the same step.
 * The functions mirror lineState, seatsState, etaCurve, curveWaitMs and pollAfter in queue.store.ts.
 *
 * KEYS: 1 waiting, 2 active, 3 seen, 4 owners, 5 users, 6 config, 7 admits, 8 counters, 9 polls, 10 inventory, 11 slots.
 * ARGV: 1 now (ms; '': Redis's TIME, which is what production passes), 2..6 default maxActive, activeTtlSeconds, idleTimeoutSeconds, paused (0/1),
 * opensAt (-1: none; 0 is the epoch, an opening long past), 7 a random number in [0, 1) for spreading polls, then the script's own.
 */
// A survival curve as text (B + 1 numbers, each in [0, 1], none above the one before), or nil when
// it is not one: the prior comes from a key outside the line, and a bad one must not stop the line.
const SURVIVAL_OF = `
local function survivalOf(text)
  if not text then return nil end
  local out = {}
  for x in string.gmatch(text, '%S+') do
    local v = tonumber(x)
    -- (NaN, which tonumber reads from 'nan', fails every comparison: v ~= v catches it.)
    if not v or v ~= v or v < 0 or v > 1 or (#out > 0 and v > out[#out]) then return nil end
    out[#out + 1] = v
  end
  if #out ~= ${ETA_BUCKETS} + 1 then return nil end
  return out
end
`;

const PRELUDE = `
-- Redis's clock decides the line (TIME), unless a deciding test clock's ms is passed.
local now = tonumber(ARGV[1])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
local jitter = tonumber(ARGV[7])
local function settings()
  local c = redis.call('HMGET', KEYS[6], 'maxActive', 'activeTtlSeconds', 'idleTimeoutSeconds', 'paused', 'opensAt')
  local opensAt = tonumber(c[5]) or tonumber(ARGV[6])
  return tonumber(c[1]) or tonumber(ARGV[2]), tonumber(c[2]) or tonumber(ARGV[3]),
         tonumber(c[3]) or tonumber(ARGV[4]), tonumber(c[4]) or tonumber(ARGV[5]), opensAt
end
-- The ETA (mirrors round6, lifeBucket, addLife, etaCurve and curveWaitMs in queue.store.ts).
local B, J, R = ${ETA_BUCKETS}, ${ETA_GRID}, ${ETA_RATIO}
local LIFE_SPAN, GRID_SPAN = math.pow(R, B) - 1, math.pow(R, J) - 1
local function round6(x) return math.floor(x * 1e6 + 0.5) / 1e6 end
local function edge(b, ttlMs) return ttlMs * (math.pow(R, b) - 1) / LIFE_SPAN end
local function gridTime(j, horizon) return horizon * (math.pow(R, j) - 1) / GRID_SPAN end
local LOG_R = math.log(R)
local function bucket(age, ttlMs)
  age = math.max(0, age)
  local i = math.max(0, math.min(B - 1, math.floor(math.log(1 + age * LIFE_SPAN / ttlMs) / LOG_R)))
  while i < B - 1 and age >= edge(i + 1, ttlMs) do i = i + 1 end
  while i > 0 and age < edge(i, ttlMs) do i = i - 1 end
  return i
end
local function gridStep(x, horizon)
  local i = math.max(0, math.min(J - 1, math.floor(math.log(1 + x * GRID_SPAN / horizon) / LOG_R)))
  while i < J - 1 and x >= gridTime(i + 1, horizon) do i = i + 1 end
  while i > 0 and x < gridTime(i, horizon) do i = i - 1 end
  return i
end
local function lifeTable()
  local c = redis.call('HMGET', KEYS[8], 'life', 'lifeAt')
  local life = {}
  if c[1] then for x in string.gmatch(c[1], '%S+') do life[#life + 1] = tonumber(x) end end
  local f = 1
  local lifeAt = tonumber(c[2])
  if lifeAt and now > lifeAt then f = math.exp((lifeAt - now) / ${LIFE_TAU_MS}) end
  return life, f
end
local function addLife(age, ttlMs, died)
  local life, f = lifeTable()
  local out = {}
  for i = 1, 2 * B do out[i] = (life[i] or 0) * f end
  local i = 2 * bucket(age, ttlMs) + 1
  if not died then i = i + 1 end
  out[i] = out[i] + math.exp(-age / ${LIFE_TAU_MS})
  for k = 1, 2 * B do out[k] = round6(out[k]) end
  redis.call('HSET', KEYS[8], 'life', table.concat(out, ' '), 'lifeAt', now)
end
local function drop(t)
  local u = tonumber(redis.call('ZSCORE', KEYS[2], t) or '')
  local wasActive = redis.call('ZREM', KEYS[2], t)
  local live = redis.call('ZREM', KEYS[1], t) + wasActive
  redis.call('ZREM', KEYS[3], t)
  redis.call('HDEL', KEYS[9], t)
  local owner = redis.call('HGET', KEYS[4], t)
  if owner then
    local uid = string.match(owner, '^(%d+):')
    if redis.call('HGET', KEYS[5], uid) == t then redis.call('HDEL', KEYS[5], uid) end
    redis.call('HDEL', KEYS[4], t)
  end
  if wasActive == 1 then
    -- A departure (or a lapse, at activeUntil) of a holder who noticed: into the life table.
    local notice = tonumber(redis.call('HGET', KEYS[11], t) or '')
    if notice and notice < 0 then
      local c = redis.call('HMGET', KEYS[6], 'activeTtlSeconds')
      local ttlMs = (tonumber(c[1]) or tonumber(ARGV[3])) * 1000
      if u <= now then addLife(u + notice, ttlMs, false) else addLife(now + notice, ttlMs, true) end
    end
    redis.call('HINCRBY', KEYS[8], 'departed', 1)
  end
  redis.call('HDEL', KEYS[11], t, t .. '~')
  return live
end
-- Counts read before one of their shows started say nothing until read again (countsVoid).
local function countsVoid()
  local start = tonumber(redis.call('HGET', KEYS[10], 'nextStart') or '0')
  return start > 0 and now >= start
end
-- A line whose seats were never read admits nobody once an enter asked for it ('unreadBlocks',
-- set by queueEnter's ARGV[11]): every settle then waits for the read, the ticker's included.
local function seats()
  local v = redis.call('HMGET', KEYS[10], 'available', 'held', 'nextLapse', 'at', 'unreadBlocks', 'dirty', 'seen')
  if not v[4] then return v[5] and 'ALL_HELD' or 'OPEN' end
  if countsVoid() then return 'ALL_HELD' end
  if tonumber(v[1]) > 0 then return 'OPEN' end
  if tonumber(v[2]) > 0 then
    local lapse = tonumber(v[3])
    -- Not while a committed change is marked and not read yet (seatsState's changePending).
    if lapse > 0 and now >= lapse and (v[6] or '0') == (v[7] or '0') then return 'OPEN' end
    return 'ALL_HELD'
  end
  return 'SOLD_OUT'
end
local function seatsRead()
  if redis.call('HEXISTS', KEYS[10], 'at') == 0 or countsVoid() then return 0 end
  return 1
end
local function settle()
  local maxActive, ttl, idle, paused, opensAt = settings()
  local st = seats()
  if st ~= 'SOLD_OUT' then
    if opensAt > 0 and now < opensAt then st = 'PRE_QUEUE' elseif paused == 1 then st = 'PAUSED' end
  end
  local prev = redis.call('HGET', KEYS[8], 'state')
  if prev ~= st then
    redis.call('HSET', KEYS[8], 'state', st)
    -- The line reopens after a sell-out: those who stopped polling get a full idle timeout to come back.
    if prev == 'SOLD_OUT' then redis.call('HSET', KEYS[8], 'reopenedAt', now) end
  end
  for _, t in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, ${CLEANUP_BATCH})) do drop(t) end
  local cutoff = now - idle * 1000
  local grace = redis.call('HMGET', KEYS[8], 'reopenedAt', 'idleGraceAt')
  if st ~= 'SOLD_OUT' and math.max(tonumber(grace[1] or '0') + ${SOLD_OUT_POLL_MS}, tonumber(grace[2] or '0')) <= cutoff then
    local idleOnes = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', cutoff, 'LIMIT', 0, ${CLEANUP_BATCH})
    for _, t in ipairs(idleOnes) do drop(t) end
    if #idleOnes > 0 then redis.call('HINCRBY', KEYS[8], 'droppedIdle', #idleOnes) end
  end
  if st == 'OPEN' then
    local free = math.min(maxActive - redis.call('ZCARD', KEYS[2]), ${ADMIT_BATCH})
    -- Admissions the seats last counted leave room for (seatBudget), when the operator asked:
    -- 'none' when they were plenty; absent (the counts were lost) none at all until a read counts them.
    local budget = nil
    if redis.call('HGET', KEYS[6], 'admitBySeats') == '1' then
      local b = redis.call('HGET', KEYS[10], 'budget')
      if b ~= 'none' then budget = tonumber(b or '0') end
    end
    if budget then free = math.min(free, budget) end
    if free > 0 then
      local heads = redis.call('ZRANGE', KEYS[1], 0, free - 1)
      for _, t in ipairs(heads) do
        redis.call('ZREM', KEYS[1], t)
        redis.call('ZREM', KEYS[3], t)
        -- A ticket last told SOLD_OUT starts its turn when it was told to look again (BACK).
        local back = tonumber(redis.call('HGET', KEYS[11], t .. '~') or '') or 0
        local from = math.max(now, back)
        redis.call('HDEL', KEYS[11], t .. '~')
        redis.call('ZADD', KEYS[2], from + ttl * 1000, t)
        redis.call('ZADD', KEYS[7], now, t)
        local owner = redis.call('HGET', KEYS[4], t)
        if owner then redis.call('HSET', KEYS[4], t, owner .. ':' .. now) end
        -- Expected to notice when it was told to poll next (at once if it never polled).
        redis.call('HSET', KEYS[11], t, math.max(from, tonumber(redis.call('HGET', KEYS[11], t) or '') or now))
      end
      if #heads > 0 then redis.call('HINCRBY', KEYS[8], 'admitted', #heads) end
      if budget and #heads > 0 then redis.call('HINCRBY', KEYS[10], 'budget', -#heads) end
    end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - ${ADMITS_KEPT_MS})
  return st, maxActive, ttl, idle, paused, opensAt
end
${SURVIVAL_OF}local function surviving(s, x, ttlMs)
  if x <= 0 then return 1 end
  if x >= ttlMs then return s[B + 1] end
  local b = bucket(x, ttlMs)
  local lo, hi = edge(b, ttlMs), edge(b + 1, ttlMs)
  return s[b + 1] + (s[b + 2] - s[b + 1]) * (x - lo) / (hi - lo)
end
-- Draws the admission curve into the counters (see etaCurve).
local function drawCurve(maxActive, ttlMs, dep)
  local life, f = lifeTable()
  local late = math.max(0, tonumber(redis.call('HGET', KEYS[8], 'late') or '0'))
  local headNotice = ${HEAD_NOTICE_MS} + late
  local d, c = {}, {}
  for b = 1, B do
    d[b] = (life[2 * b - 1] or 0) * f
    c[b] = (life[2 * b] or 0) * f
  end
  local n = redis.call('ZCARD', KEYS[2])
  local weight = 1
  local tokens, untils = {}, {}
  if n > ${ETA_SAMPLE} then
    weight = n / ${ETA_SAMPLE}
    for i = 0, ${ETA_SAMPLE} - 1 do
      local r = redis.call('ZRANGE', KEYS[2], math.floor(i * n / ${ETA_SAMPLE}), math.floor(i * n / ${ETA_SAMPLE}), 'WITHSCORES')
      tokens[#tokens + 1], untils[#untils + 1] = r[1], tonumber(r[2])
    end
  elseif n > 0 then
    local r = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
    for i = 1, #r, 2 do tokens[#tokens + 1], untils[#untils + 1] = r[i], tonumber(r[i + 1]) end
  end
  local notices = {}
  if #tokens > 0 then notices = redis.call('HMGET', KEYS[11], unpack(tokens)) end
  local starts, ages = {}, {}
  for i = 1, #tokens do
    local v = tonumber(notices[i] or '') or now
    if v < 0 then
      starts[i], ages[i] = -v, now + v
      local b = bucket(now + v, ttlMs) + 1
      c[b] = c[b] + weight * math.exp((-v - now) / ${LIFE_TAU_MS})
    else
      starts[i], ages[i] = math.max(v + late, now), 0
    end
  end
  local total = 0
  for b = 1, B do total = total + (d[b] + c[b]) end
  local least = ${ETA_LIFE_WEIGHT} * total
  local first, last = -1, -1
  for b = 1, B do
    if first < 0 and d[b] > 0 and d[b] >= least then first = b end
    if d[b] + c[b] > 0 and d[b] + c[b] >= least then last = b end
  end
  local from = first < 0 and math.huge or edge(first - 1, ttlMs)
  local oldest = last < 0 and 0 or (edge(last - 1, ttlMs) + edge(last, ttlMs)) / 2
  local risk, deaths, watched = 0, ${ETA_PRIOR}, ${ETA_PRIOR} * math.min(ttlMs / 4, math.max(${ETA_COLD_MIN_MS}, ${ETA_COLD_FACTOR} * oldest))
  for b = 1, B do
    risk = risk + (d[b] + c[b])
    if first >= 0 and b >= first then deaths = deaths + d[b] end
    watched = watched + (d[b] + c[b]) * math.max(0, (edge(b - 1, ttlMs) + edge(b, ttlMs)) / 2 - from)
  end
  local rate = deaths / watched
  -- The prior the line took for its TTL (an operator may have changed the TTL since).
  local pv = redis.call('HMGET', KEYS[8], 'prior', 'priorTtl')
  local prior = nil
  if tonumber(pv[2]) == ttlMs then prior = survivalOf(pv[1]) end
  local function priorHazard(b)
    local hi = prior[b]
    if hi > 1e-12 then return math.min(1, math.max(0, 1 - prior[b + 1] / hi)) end
    return 1
  end
  local trust = 0
  if prior then
    local r, own, gap = risk, 1, 0
    for b = 1, B do
      local atRisk = math.max(r - c[b] / 2, d[b])
      if atRisk >= ${ETA_PRIOR_RISK} then
        own = own * (1 - d[b] / atRisk)
        gap = math.max(gap, math.abs(own - prior[b + 1]))
      end
      r = r - (d[b] + c[b])
    end
    local q = gap / ${ETA_PRIOR_GAP}
    trust = math.max(0, 1 - q * q)
  end
  local s = {1}
  -- Past the oldest age the table holds, survival falls on a straight line (the density since the youngest departure).
  local endS, endAt, density = 1, 0, 0
  for b = 1, B do
    local pace = 1 - math.exp(-rate * (edge(b, ttlMs) - edge(b - 1, ttlMs)))
    if first >= 0 and b > last then
      if b == last + 1 then
        endS, endAt = (s[b - 1] + s[b]) / 2, (edge(b - 2, ttlMs) + edge(b - 1, ttlMs)) / 2
        -- A plateau (nobody left in the latter half of the table's ages) stays flat (see survival).
        local flat = true
        for k = bucket((from + endAt) / 2, ttlMs) + 1, b - 1 do
          if d[k] > 0 and d[k] >= least then flat = false end
        end
        if flat then density = 0 else density = (1 - endS) / (endAt - from) end
      end
      local lo = endS - density * (edge(b - 1, ttlMs) - endAt)
      if lo > 1e-12 then pace = 1 - math.max(0, endS - density * (edge(b, ttlMs) - endAt)) / lo else pace = 1 end
    end
    if prior then pace = trust * priorHazard(b) + (1 - trust) * pace end
    local pseudo = ${ETA_PRIOR_HAZARD} * math.exp(-(edge(b - 1, ttlMs) + edge(b, ttlMs)) / 2 / ${LIFE_TAU_MS})
    local atRisk = math.max(risk - c[b] / 2, d[b]) + pseudo
    local h = math.min(1, pace)
    if atRisk > 0 then h = math.min(1, (d[b] + pseudo * pace) / atRisk) end
    s[b + 1] = s[b] * (1 - h)
    risk = risk - (d[b] + c[b])
  end
  local open = 0
  if first < 0 then open = 1 elseif last < B then open = s[last + 1] end
  local s0 = {}
  for i = 1, #tokens do s0[i] = surviving(s, ages[i], ttlMs) end
  local most = ttlMs - headNotice
  local think = 0
  for b = 0, B - 1 do
    if edge(b, ttlMs) >= most then break end
    local hi = math.min(edge(b + 1, ttlMs), most)
    think = think + (hi - edge(b, ttlMs)) * (s[b + 1] + surviving(s, hi, ttlMs)) / 2
  end
  local horizon = 2 * ttlMs
  local cycle = round6(math.min(ttlMs, headNotice + think))
  local empty = math.max(0, maxActive - n)
  local over = math.max(0, n - maxActive)
  local grid = {}
  for j = 0, J do
    local t = now + gridTime(j, horizon)
    local sum = 0
    for i = 1, #tokens do
      if t >= untils[i] then sum = sum + weight
      else
        local x = t - starts[i]
        if x > ages[i] and s0[i] > 1e-9 then sum = sum + weight * (1 - surviving(s, x, ttlMs) / s0[i]) end
      end
    end
    if empty > 0 then
      if t >= now + ttlMs then sum = sum + empty
      elseif t > now + headNotice then sum = sum + empty * (1 - surviving(s, t - now - headNotice, ttlMs)) end
    end
    grid[j + 1] = sum
  end
  -- x ms after now (see etaCurve).
  local function linear(g, x)
    if x <= 0 then return 0 end
    if x >= horizon then return g[J + 1] end
    local i = gridStep(x, horizon)
    local lo = gridTime(i, horizon)
    return g[i + 1] + (g[i + 2] - g[i + 1]) * (x - lo) / (gridTime(i + 1, horizon) - lo)
  end
  -- Only admissions refill: the first over departures admit nobody.
  local admitted = {}
  for j = 1, J + 1 do admitted[j] = math.max(0, grid[j] - over) end
  local cycles = {}
  for q = 0, ${ETA_QUANTILES} - 1 do
    local target = 1 - (q + 0.5) / ${ETA_QUANTILES}
    local x = most
    for b = 0, B - 1 do
      if s[b + 2] <= target then
        local lo = edge(b, ttlMs)
        x = lo + (edge(b + 1, ttlMs) - lo) * (s[b + 1] - target) / (s[b + 1] - s[b + 2])
        break
      end
    end
    cycles[q + 1] = headNotice + math.max(0, math.min(x, most))
  end
  -- priorRecent: the departures the table remembers, counted by when they left.
  local recent = 0
  for b = 0, B - 1 do recent = recent + d[b + 1] * math.exp((edge(b, ttlMs) + edge(b + 1, ttlMs)) / 2 / ${LIFE_TAU_MS}) end
  if recent >= ${ETA_PRIOR_DEATHS} and open <= ${ETA_PRIOR_OPEN} then
    local rounded = {}
    for i = 1, B + 1 do rounded[i] = round6(s[i]) end
    redis.call('HSET', KEYS[8], 'survival', table.concat(rounded, ' '))
  else
    redis.call('HDEL', KEYS[8], 'survival')
  end
  local out = {'curveAt', now, 'curveDep', dep, 'curveMax', maxActive, 'curveTtl', ttlMs, 'curveCycle', cycle, 'curveOver', over, 'curveOverAt', now}
  -- The renewal function of a refilled slot (see etaCurve), then each instant's admissions and their refills.
  local m = {0}
  local function mAt(x) return linear(m, x) end
  for j = 1, J do
    local hi, lo = gridTime(j, horizon), gridTime(j - 1, horizon)
    local known, self = 0, 0
    for q = 1, ${ETA_QUANTILES} do
      local g = cycles[q]
      if g <= hi then
        local x = hi - g
        if x >= lo then
          local w = (x - lo) / (hi - lo)
          known = known + (1 + m[j] * (1 - w))
          self = self + w
        else
          known = known + (1 + mAt(x))
        end
      end
    end
    m[j + 1] = known / (${ETA_QUANTILES} - self)
  end
  for j = 0, J do
    local t = gridTime(j, horizon)
    local edge = mAt(t)
    local sum = linear(grid, t) + admitted[1] * edge
    for i = 1, j do
      local nxt = mAt(t - gridTime(i, horizon))
      sum = sum + (admitted[i + 1] - admitted[i]) * (edge + nxt) / 2
      edge = nxt
    end
    out[#out + 1] = 'c' .. j
    out[#out + 1] = round6(sum)
  end
  redis.call('HSET', KEYS[8], unpack(out))
  return now, cycle, over
end
local function eta(position, maxActive, ttl)
  local ttlMs = ttl * 1000
  local c = redis.call('HMGET', KEYS[8], 'curveAt', 'curveDep', 'curveMax', 'curveTtl', 'curveCycle', 'departed', 'curveOver', 'curveOverAt')
  local dep = tonumber(c[6] or '0')
  local at, dep0, cycle = tonumber(c[1]), tonumber(c[2]), tonumber(c[5])
  -- Over counts only for the curve it was drawn with: a process of the version before it draws
  -- curves without it (during a rolling deploy) and leaves an earlier one's in the hash.
  local over = 0
  if c[8] and tonumber(c[8]) == at then over = tonumber(c[7]) end
  if not at or now - at >= ${ETA_CURVE_MS} or now < at or tonumber(c[3]) ~= maxActive or tonumber(c[4]) ~= ttlMs then
    at, cycle, over = drawCurve(maxActive, ttlMs, dep)
    dep0 = dep
  end
  -- Departures since the curve was drawn; the first over of them admitted nobody (see curveWaitMs).
  local d = dep - dep0
  local q = position + d + math.max(0, over - d) - ${ETA_SHIFT}
  local horizon = 2 * ttlMs
  -- The first grid point where the count reaches q, by bisection (the count never decreases).
  local lo, hi = 0, J + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if tonumber(redis.call('HGET', KEYS[8], 'c' .. mid)) >= q then hi = mid else lo = mid + 1 end
  end
  local t
  if lo > J then
    t = at + horizon + (q - tonumber(redis.call('HGET', KEYS[8], 'c' .. J))) * cycle / maxActive
  elseif lo == 0 then
    t = at
  else
    local v = redis.call('HMGET', KEYS[8], 'c' .. (lo - 1), 'c' .. lo)
    local a, b = tonumber(v[1]), tonumber(v[2])
    local t0, t1 = at + gridTime(lo - 1, horizon), at + gridTime(lo, horizon)
    t = t0 + (t1 - t0) * (q - a) / (b - a)
  end
  local wait = math.max(0, t - now)
  local card = redis.call('ZCARD', KEYS[2])
  local k = position + math.max(0, card - maxActive)
  if k <= card then
    local p = redis.call('ZRANGE', KEYS[2], k - 1, k - 1, 'WITHSCORES')
    wait = math.min(wait, math.max(0, tonumber(p[2]) - now))
  end
  return math.floor(wait)
end
-- Mirrors pollAfter() in queue.store.ts.
local function pollAfter(status, position, untilMs, wait, opensAt, idle, maxActive)
  if status == 'EXPIRED' or status == 'SOLD_OUT' then return ${SOLD_OUT_POLL_MS} end
  if status == 'ACTIVE' then return math.max(1000, math.min(30000, math.floor((untilMs - now) / 2))) end
  local ceiling = math.min(30000, math.floor(idle * 1000 / 3))
  local floor = math.min(1000, ceiling)
  if status == 'PRE_QUEUE' then
    local untilOpen = math.max(0, opensAt - now)
    local hi = math.min(ceiling, untilOpen + ${OPENING_SPREAD_MS})
    local lo = math.max(floor, math.min(untilOpen, math.floor(hi / 2)))
    return math.max(floor, lo + math.floor(jitter * math.max(0, hi - lo)))
  end
  if position <= ${HEAD_PLACES} then return floor end
  local byEta = 0
  -- Only once the curve the ETA was read from had learnt from departures (etaLearnt).
  if wait >= 0 and tonumber(redis.call('HGET', KEYS[8], 'curveDep') or '0') >= math.min(maxActive, ${ETA_EVIDENCE}) then byEta = math.floor(wait / 4) end
  return math.max(floor, math.min(ceiling, math.max(position * 50, byEta)))
end
-- {status, position, activeUntil, eta (-1: none), opensAt, pollAfterMs, paused (0/1)}
local function state(t, st, maxActive, ttl, idle, opensAt, paused)
  local status, position, untilMs, wait = 'EXPIRED', 0, 0, -1
  local u = redis.call('ZSCORE', KEYS[2], t)
  if u then
    status, untilMs = 'ACTIVE', tonumber(u)
  else
    local rank = redis.call('ZRANK', KEYS[1], t)
    if rank then
      if st == 'SOLD_OUT' then status = 'SOLD_OUT'
      elseif st == 'PRE_QUEUE' then status, wait = 'PRE_QUEUE', opensAt - now
      else
        status, position = 'WAITING', rank + 1
        if st == 'OPEN' then wait = eta(position, maxActive, ttl) end
      end
    end
  end
  local poll = pollAfter(status, position, untilMs, wait, opensAt, idle, maxActive)
  if status == 'ACTIVE' then
    -- The holder notices the admission now (see etaCurve), this late after the poll it was told to make.
    local expected = tonumber(redis.call('HGET', KEYS[11], t) or '') or now
    if expected >= 0 then
      redis.call('HSET', KEYS[11], t, -now)
      local late = tonumber(redis.call('HGET', KEYS[8], 'late') or '0')
      redis.call('HSET', KEYS[8], 'late', round6(late + (now - expected - late) / 10))
    end
  elseif status == 'WAITING' or status == 'PRE_QUEUE' then
    redis.call('HSET', KEYS[11], t, now + poll)
    redis.call('HDEL', KEYS[11], t .. '~')
  elseif status == 'SOLD_OUT' then
    -- Told to look again in a minute: if seats come back meanwhile, its turn starts then (BACK).
    redis.call('HSET', KEYS[11], t .. '~', now + poll)
  end
  return {status, position, untilMs, wait, opensAt, poll, paused}
end
`;

// Mirrors quiet() in the memory adapter (see LINE_PRUNE_MS): nobody ACTIVE, no change of seats
// waiting to be read, and nobody waiting unless the line is sold out.
const QUIET = `
local function quiet()
  if redis.call('ZCARD', KEYS[2]) > 0 then return false end
  local v = redis.call('HMGET', KEYS[10], 'dirty', 'seen')
  if (v[1] or '0') ~= (v[2] or '0') then return false end
  return redis.call('ZCARD', KEYS[1]) == 0 or redis.call('HGET', KEYS[8], 'state') == 'SOLD_OUT'
end
`;

// The line's numbers after settle() (its six results as arguments), as toStats reads them.
const STATS = `
local function stats(st, maxActive, ttl, idle, paused, opensAt)
  local line = redis.call('ZCARD', KEYS[1])
  local waiting, preQueued = line, 0
  if opensAt > 0 and now < opensAt then waiting, preQueued = 0, line end
  -- Sold out, every ticket in line reads SOLD_OUT: none is waiting (their order is kept for a reopening).
  if st == 'SOLD_OUT' then waiting, preQueued = 0, 0 end
  local back = -1
  if st == 'OPEN' and line > 0 then back = eta(line, maxActive, ttl) end
  local c = redis.call('HMGET', KEYS[8], 'admitted', 'droppedIdle')
  return {st, waiting, preQueued, redis.call('ZCARD', KEYS[2]), maxActive, ttl, idle, paused, opensAt,
          tonumber(c[1] or '0'), redis.call('ZCOUNT', KEYS[7], '(' .. (now - ${RATE_WINDOW_MS}), '+inf'), tonumber(c[2] or '0'), back,
          seatsRead(), redis.call('HGET', KEYS[6], 'admitBySeats') == '1' and 1 or 0}
end
`;

const SCRIPTS = {
  // ARGV 8 userId, 9 new tokenId, 10 the pre-queue draw in [0, 1), 11 seats never read block admission (0/1)
  queueEnter: `${PRELUDE}
if ARGV[11] == '1' and redis.call('HEXISTS', KEYS[10], 'at') == 0 then redis.call('HSET', KEYS[10], 'unreadBlocks', 1) end
local st, maxActive, ttl, idle, paused, opensAt = settle()
local t = redis.call('HGET', KEYS[5], ARGV[8])
local created = 0
if not (t and (redis.call('ZSCORE', KEYS[1], t) or redis.call('ZSCORE', KEYS[2], t))) then
  t = ARGV[9]
  created = 1
  local score
  if opensAt > 0 and now < opensAt then
    -- A uniformly random place within the pre-queue's band: behind whoever was already in line,
    -- ahead of everyone who enters after the opening.
    score = tonumber(redis.call('HGET', KEYS[8], 'drawBase') or '0') + tonumber(ARGV[10])
  else
    score = redis.call('HINCRBY', KEYS[8], 'seq', 1)
  end
  redis.call('ZADD', KEYS[1], score, t)
  redis.call('ZADD', KEYS[3], now, t)
  redis.call('HSET', KEYS[4], t, ARGV[8] .. ':' .. now)
  redis.call('HSET', KEYS[5], ARGV[8], t)
  st, maxActive, ttl, idle, paused, opensAt = settle()
else
  redis.call('ZADD', KEYS[3], 'XX', now, t)
end
local owner = redis.call('HGET', KEYS[4], t)
local s = state(t, st, maxActive, ttl, idle, opensAt, paused)
s[8] = t
s[9] = string.match(owner, '^%d+:(%d+)')
s[10] = created
s[11] = seatsRead()
return s
`,
  // ARGV 8 tokenId, 9 limit polls (0/1)
  queueStatus: `${PRELUDE}
local t = ARGV[8]
local st, maxActive, ttl, idle, paused, opensAt = settle()
if ARGV[9] == '1' then
  local earliest = tonumber(redis.call('HGET', KEYS[9], t) or '0')
  if now < earliest then return {'RATE_LIMITED', earliest - now} end
end
redis.call('ZADD', KEYS[3], 'XX', now, t)
local s = state(t, st, maxActive, ttl, idle, opensAt, paused)
if s[1] ~= 'EXPIRED' then redis.call('HSET', KEYS[9], t, now + math.floor(s[6] / 2)) end
return s
`,
  // ARGV 8 tokenId
  queueLeave: `${PRELUDE}
local live = drop(ARGV[8])
settle()
return live
`,
  // ARGV 8.. field, value pairs of settings to store (opensAt -1: none)
  queueStats: `${PRELUDE}${STATS}
for i = 8, #ARGV, 2 do
  if ARGV[i] == 'opensAt' then
    local _, _, _, _, old = settings()
    local new = tonumber(ARGV[i + 1])
    -- A new pre-queue draws its places in a band of its own, after everyone already in line.
    if new > now and not (old > now) then
      redis.call('HSET', KEYS[8], 'drawBase', redis.call('HINCRBY', KEYS[8], 'seq', 2) - 1)
    end
  end
  if ARGV[i] == 'idleTimeoutSeconds' then
    local _, _, old = settings()
    -- Tickets in hand were told to poll within the old timeout (see pollCeiling).
    if tonumber(ARGV[i + 1]) < old then
      local graceAt = now + math.min(30000, math.floor(old * 1000 / 3))
      redis.call('HSET', KEYS[8], 'idleGraceAt', math.max(graceAt, tonumber(redis.call('HGET', KEYS[8], 'idleGraceAt') or '0')))
    end
  end
  -- Turned to admitting by seats: no room until a read counts it (a room counted before is stale).
  if ARGV[i] == 'admitBySeats' and ARGV[i + 1] == '1' and redis.call('HGET', KEYS[6], 'admitBySeats') ~= '1' then
    redis.call('HSET', KEYS[10], 'budget', 0)
  end
  redis.call('HSET', KEYS[6], ARGV[i], ARGV[i + 1])
end
return stats(settle())
`,
  // Settles the line: {1 when the caller is to read the inventory (claimed for it alone), 2 when
  // the line has been quiet for LINE_PRUNE_MS and leaves the ticker, else 0; the line's stats}.
  queueSettle: `${PRELUDE}${QUIET}${STATS}
local s = stats(settle())
-- The deployment's think-time prior (see ETA_PRIOR_EVERY_MS): the line offers its own survival
-- (returned) while its curve is fresh, and takes the prior of its TTL for its next curves.
-- ARGV[8] '1': ARGV 9.. are the prior's (TTL ms, survival) pairs; '0': the ticker could not read
-- them, and the line keeps what it has.
local ttlMs = s[6] * 1000
local offer = false
local v = redis.call('HMGET', KEYS[8], 'survival', 'curveAt', 'curveTtl')
if s[1] == 'OPEN' and v[1] and tonumber(v[3]) == ttlMs and now - (tonumber(v[2]) or 0) < ${2 * ETA_CURVE_MS} then offer = v[1] end
if ARGV[8] == '1' then
  local prior = false
  for i = 9, #ARGV - 1, 2 do
    if tonumber(ARGV[i]) == ttlMs and survivalOf(ARGV[i + 1]) then prior = ARGV[i + 1] end
  end
  local had = redis.call('HMGET', KEYS[8], 'prior', 'priorTtl')
  -- Written only when it changed: an unchanged HSET still goes to the append-only file and replicas.
  if prior and (had[1] ~= prior or tonumber(had[2]) ~= ttlMs) then redis.call('HSET', KEYS[8], 'prior', prior, 'priorTtl', ttlMs)
  elseif not prior and had[1] then redis.call('HDEL', KEYS[8], 'prior', 'priorTtl') end
end
if quiet() then
  local since = tonumber(redis.call('HGET', KEYS[8], 'quietSince') or '')
  if not since then redis.call('HSET', KEYS[8], 'quietSince', now)
  elseif now - since >= ${LINE_PRUNE_MS} then return {2, s, ttlMs, offer} end
else
  redis.call('HDEL', KEYS[8], 'quietSince')
end
local w = redis.call('HMGET', KEYS[10], 'at', 'dirty', 'seen', 'claimUntil', 'nextLapse')
if tonumber(w[4] or '0') > now then return {0, s, ttlMs, offer} end
local at = tonumber(w[1])
local age = math.huge
if at then age = now - at end
local changed = (w[2] or '0') ~= (w[3] or '0')
local lapse = tonumber(w[5] or '0')
if age >= ${INVENTORY_MAX_AGE_MS} or (age >= ${INVENTORY_MIN_GAP_MS} and (changed or (lapse > 0 and now >= lapse) or countsVoid())) then
  redis.call('HSET', KEYS[10], 'claimUntil', now + ${INVENTORY_CLAIM_MS}, 'claimed', w[2] or '0')
  return {1, s, ttlMs, offer}
end
return {0, s, ttlMs, offer}
`,
  // After the ticker took the line out of the registry: 1 if it is still quiet (it stays out),
  // 0 if something happened meanwhile (the caller puts it back). Settles nothing.
  queueStillQuiet: `${PRELUDE}${QUIET}
if quiet() and redis.call('HEXISTS', KEYS[8], 'quietSince') == 1 then return 1 end
return 0
`,
  // ARGV 8 available, 9 held, 10 nextLapse (0: none), 12 nextStart (0: none), 13 seats ('': at least the read's cap, '-': not counted), 14.. the users holding seats
  queueInventory: `${PRELUDE}
-- ARGV[11]: the change number the read was started after ('': the one a tick claimed it at).
-- A read older than the recorded one changes nothing.
local asOf = ARGV[11]
if asOf == '' then
  asOf = redis.call('HGET', KEYS[10], 'claimed') or '0'
  redis.call('HDEL', KEYS[10], 'claimUntil')
end
if tonumber(asOf) >= tonumber(redis.call('HGET', KEYS[10], 'seen') or '0') then
  redis.call('HSET', KEYS[10], 'available', ARGV[8], 'held', ARGV[9], 'nextLapse', ARGV[10], 'nextStart', ARGV[12], 'at', now, 'seen', asOf)
end
-- seatBudget: the seats less the ACTIVE fans (lapsed ones aside) who hold none. Counted reads are
-- ordered among themselves ('budgetSeen'): a read that did not count ('-') neither sets the room
-- nor makes a counted one older than it look stale.
if ARGV[13] ~= '-' and tonumber(asOf) >= tonumber(redis.call('HGET', KEYS[10], 'budgetSeen') or '0') then
  redis.call('HSET', KEYS[10], 'budgetSeen', asOf)
  if ARGV[13] == '' then
    redis.call('HSET', KEYS[10], 'budget', 'none')
  else
    local live = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
    -- Of the users holding seats, those whose own ticket is ACTIVE (a turn that ended does not count).
    local holding = 0
    for i = 14, #ARGV do
      local t = redis.call('HGET', KEYS[5], ARGV[i])
      local untilMs = t and redis.call('ZSCORE', KEYS[2], t)
      if untilMs and tonumber(untilMs) > now then holding = holding + 1 end
    end
    redis.call('HSET', KEYS[10], 'budget', tonumber(ARGV[13]) - math.max(0, live - holding))
  end
end
settle()
return 1
`,
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptFn = (...args: Array<string | number>) => Promise<unknown>;

// The gate's check: read-only, no settling, one round trip; ARGV[3], when given, is a schedule
// whose seat-map epoch, version and freeing version (KEYS[3]) come back with it.
const CHECK = `
local now = tonumber(ARGV[1])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
local v = {false, false, false}
if ARGV[3] ~= '' then v = redis.call('HMGET', KEYS[3], 'epoch', ARGV[3], ARGV[3] .. ':freed') end
local state = 'EXPIRED'
local untilMs = redis.call('ZSCORE', KEYS[2], ARGV[2])
if untilMs and tonumber(untilMs) > now then state = 'ACTIVE'
elseif redis.call('ZSCORE', KEYS[1], ARGV[2]) then state = 'WAITING' end
return {state, v[1], v[2], v[3]}
`;

/** How long a tick waits for the deployment's ETA priors before going on with the last ones read. */
const PRIOR_READ_MS = 500;

// A line's offered survival blended into the deployment's prior (mirrors blendPrior in queue.store.ts).
// KEYS[1] the prior; ARGV now ('': TIME), ttlMs, the offered survivals.
const PRIOR_BLEND = `${SURVIVAL_OF}
local now = tonumber(ARGV[1])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
local cur = redis.call('HMGET', KEYS[1], ARGV[2], ARGV[2] .. ':at')
-- What is there counts only if it is a survival curve (edited by hand, it may be anything).
local old = survivalOf(cur[1])
local at = tonumber(cur[2])
if old and at and now - at < ${ETA_PRIOR_EVERY_MS} and at <= now then return 0 end
-- The mean of the offers (ARGV 3.., in ascending concert id), added up in that order.
local offers = {}
for k = 3, #ARGV do
  local o = {}
  for x in string.gmatch(ARGV[k], '%S+') do o[#o + 1] = tonumber(x) end
  offers[#offers + 1] = o
end
local out = {}
for i = 1, #offers[1] do
  local sum = 0
  for k = 1, #offers do sum = sum + offers[k][i] end
  local mean = sum / #offers
  if old then mean = old[i] + ${ETA_PRIOR_BLEND} * (mean - old[i]) end
  out[i] = math.floor(mean * 1e6 + 0.5) / 1e6
end
redis.call('HSET', KEYS[1], ARGV[2], table.concat(out, ' '), ARGV[2] .. ':at', now)
return 1
`;

// Admissions per bucket, oldest first. KEYS[1] admits; ARGV now, bucketMs, buckets.
const HISTORY = `
local now, size, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
local out = {}
for i = 1, n do
  local from = now - (n - i + 1) * size
  out[i] = redis.call('ZCOUNT', KEYS[1], '(' .. from, from + size)
end
return out
`;

export class RedisQueueStore implements QueueStore {
  private last: Map<number, QueueStats> | null = null;

  /**
   * `etaPrior: false`: no line offers or takes the deployment's think-time prior (QUEUE_ETA_PRIOR=off).
   * `priorReadMs`: how long a tick waits for the prior (PRIOR_READ_MS; 0: as long as the read takes,
   * for tests that hold this store to the memory store step by step on a busy machine).
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly opts: { etaPrior?: boolean; priorReadMs?: number } = {},
  ) {
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: 11, lua });
    }
    if (!('queueCheck' in redis)) redis.defineCommand('queueCheck', { numberOfKeys: 3, lua: CHECK });
    if (!('queueHistory' in redis)) redis.defineCommand('queueHistory', { numberOfKeys: 1, lua: HISTORY });
    if (!('queuePriorBlend' in redis)) redis.defineCommand('queuePriorBlend', { numberOfKeys: 1, lua: PRIOR_BLEND });
  }

  private run(name: ScriptName, concertId: number, now: StoreNow, defaults: QueueSettings, ...args: Array<string | number>) {
    const fn = (this.redis as unknown as Record<string, ScriptFn>)[name]!.bind(this.redis);
    const d = defaults;
    return fn(...queueKeyList(concertId), now ?? '', d.maxActive, d.activeTtlSeconds, d.idleTimeoutSeconds, d.paused ? 1 : 0, d.opensAt ?? NO_OPENING, Math.random(), ...args);
  }

  private script(name: 'queueCheck' | 'queueHistory' | 'queuePriorBlend', ...args: Array<string | number>) {
    return (this.redis as unknown as Record<string, ScriptFn>)[name]!.call(this.redis, ...args);
  }

  async enter(concertId: number, userId: number, newTokenId: string, now: StoreNow, defaults: QueueSettings, opts: EnterOptions = {}): Promise<EnterResult> {
    const raw = await this.run('queueEnter', concertId, now, defaults, userId, newTokenId, randomFraction(), opts.unreadSeatsBlock ? 1 : 0);
    await this.register(concertId);
    const r = raw as [...RawState, string, string, number, number];
    return { ...toState(r.slice(0, 7) as RawState), tokenId: r[7], enteredAt: Number(r[8]), created: r[9] === 1, seatsRead: r[10] === 1 };
  }

  async status(concertId: number, tokenId: string, now: StoreNow, defaults: QueueSettings, limitPolls: boolean): Promise<TokenState | { rateLimited: number }> {
    const r = (await this.run('queueStatus', concertId, now, defaults, tokenId, limitPolls ? 1 : 0)) as RawState | ['RATE_LIMITED', number];
    return r[0] === 'RATE_LIMITED' ? { rateLimited: Number(r[1]) } : toState(r as RawState);
  }

  async check(concertId: number, tokenId: string, now: StoreNow, seatMapOf?: number) {
    const k = queueKeys(concertId);
    const [state, epoch, n, freed] = (await this.script('queueCheck', k.waiting, k.active, seatMapVersionsKey(concertId), now ?? '', tokenId, seatMapOf ?? '')) as [
      GateState,
      string | null,
      string | null,
      string | null,
    ];
    if (seatMapOf === undefined) return { state };
    return { state, seatMapVersion: epoch === null ? null : { epoch, n: Number(n ?? 0), freed: Number(freed ?? 0) } };
  }

  async leave(concertId: number, tokenId: string, now: StoreNow, defaults: QueueSettings): Promise<boolean> {
    return (await this.run('queueLeave', concertId, now, defaults, tokenId)) === 1;
  }

  async tick(now: StoreNow, defaults: QueueSettings): Promise<number[]> {
    const sharing = this.opts.etaPrior !== false;
    const [concerts, priors] = await Promise.all([this.concerts(), sharing ? this.readPriors() : ({} as Record<string, string>)]);
    // The deployment's ETA priors, as (TTL ms, survival) pairs: each line takes its TTL's ('0': keep yours).
    const pairs = priors === null ? ['0'] : ['1', ...Object.entries(priors).flatMap(([field, s]) => (field.includes(':') ? [] : [field, s]))];
    const settled = (await Promise.all(concerts.map((id) => this.run('queueSettle', id, now, defaults, ...pairs)))) as Array<[number, RawStats, number, string | null]>;
    // What the lines offered, by TTL in ascending concert id (as the memory store adds them up), to
    // one blend per TTL; not waited for (a later read of the prior on this connection comes after it),
    // and a failed blend drops that tick's offers.
    if (sharing) {
      const offers = new Map<number, Array<[number, string]>>();
      settled.forEach(([, , ttlMs, offer], i) => {
        if (offer) offers.set(ttlMs, [...(offers.get(ttlMs) ?? []), [concerts[i]!, offer]]);
      });
      for (const [ttlMs, list] of offers) {
        list.sort((a, b) => a[0] - b[0]);
        void this.script('queuePriorBlend', ETA_PRIOR_KEY, now ?? '', ttlMs, ...list.map(([, o]) => o)).catch(() => {});
      }
    }
    const stats = new Map<number, QueueStats>();
    const due: number[] = [];
    const quiet: number[] = [];
    concerts.forEach((id, i) => {
      const [code, raw] = settled[i]!;
      if (code === 2) quiet.push(id);
      else stats.set(id, toStats(raw));
      if (code === 1) due.push(id);
    });
    this.last = stats;
    await Promise.all(quiet.map((id) => this.unregister(id, now, defaults)));
    return due;
  }

  lastTick() {
    return this.last;
  }

  /** The last priors read, for a tick whose read failed or took too long. */
  private priors: Record<string, string> | null = null;

  /**
   * The deployment's priors, read at every tick. They live outside every line's slot: a read that
   * fails or hangs (their Cluster node down or stalled) must not hold up the lines' settling, so
   * after PRIOR_READ_MS the tick goes on with the last ones read (null before any: each line keeps its own).
   */
  private async readPriors(): Promise<Record<string, string> | null> {
    let timer: NodeJS.Timeout | undefined;
    const read = this.redis.hgetall(ETA_PRIOR_KEY).then(
      (r) => (this.priors = r),
      () => null,
    );
    const wait = this.opts.priorReadMs ?? PRIOR_READ_MS;
    if (wait <= 0) return (await read) ?? this.priors;
    const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), wait)));
    try {
      return (await Promise.race([read, late])) ?? this.priors;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Takes a quiet line out of the registry. An enter (or a change of seats) racing with this adds
   * the concert back after its own script, so either the check below sees what it did, or its
   * SADD comes after this SREM: a line with someone in it is never left out.
   */
  private async unregister(concertId: number, now: StoreNow, defaults: QueueSettings): Promise<void> {
    await this.redis.srem(QUEUE_REGISTRY_KEY, String(concertId));
    if ((await this.run('queueStillQuiet', concertId, now, defaults)) !== 1) await this.register(concertId);
  }

  async setInventory(concertId: number, inv: Inventory, now: StoreNow, defaults: QueueSettings, asOf?: number): Promise<void> {
    await this.run('queueInventory', concertId, now, defaults, inv.available, inv.held, inv.nextLapse ?? 0, asOf ?? '', inv.nextStart ?? 0, inv.seats === undefined ? '-' : (inv.seats ?? ''), ...(inv.holders ?? []));
  }

  async seatsChanged(concertId: number): Promise<number> {
    // A quiet sold-out line left the ticker: the change may bring seats back (both sent at once:
    // the registry lives in a slot of its own).
    const [n] = await Promise.all([this.redis.hincrby(queueKeys(concertId).inventory, 'dirty', 1), this.register(concertId)]);
    return n;
  }

  async concerts(): Promise<number[]> {
    return (await this.redis.smembers(QUEUE_REGISTRY_KEY)).map(Number);
  }

  async stats(concertId: number, now: StoreNow, defaults: QueueSettings): Promise<QueueStats> {
    return toStats((await this.run('queueStats', concertId, now, defaults)) as RawStats);
  }

  async configure(concertId: number, patch: QueueSettingsPatch, now: StoreNow, defaults: QueueSettings): Promise<QueueStats> {
    const pairs: Array<string | number> = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      pairs.push(k, v === null ? NO_OPENING : typeof v === 'boolean' ? (v ? 1 : 0) : v);
    }
    const r = await this.run('queueStats', concertId, now, defaults, ...pairs);
    await this.register(concertId);
    return toStats(r as RawStats);
  }

  async admissions(concertId: number, now: StoreNow, bucketMs: number, buckets: number): Promise<number[]> {
    return ((await this.script('queueHistory', queueKeys(concertId).admits, now ?? '', bucketMs, buckets)) as number[]).map(Number);
  }

  /**
   * Adds the concert to the ticker's registry, after each script that may have put someone in
   * its line: every time, not once per process, so a registry lost with Redis's data (a restart
   * without its append-only file, a FLUSHALL) or pruned by the ticker is written again.
   */
  private async register(concertId: number): Promise<void> {
    await this.redis.sadd(QUEUE_REGISTRY_KEY, String(concertId));
  }

  async ping(): Promise<boolean> {
    return (await this.redis.ping()) === 'PONG';
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

/**
 * No opening time, in the scripts' arguments and the settings hash. It was 0, which is also the
 * epoch, a date the API takes: an `opensAt` of 1970-01-01T00:00:00Z read back as null here and as
 * the date in the memory store (an outside hostile review). A hash written before keeps its 0,
 * read now as an opening long past: the same line (open), its stats showing 1970 until the next
 * `configure` of `opensAt`.
 */
const NO_OPENING = -1;

type RawState = [string, number, number, number, number, number, number];
type RawStats = [string, ...number[]];

function toState(r: RawState): TokenState {
  const status = r[0] as TicketStatus;
  const opensAt = Number(r[4]);
  return {
    status,
    position: status === 'WAITING' ? Number(r[1]) : null,
    activeUntil: status === 'ACTIVE' ? Number(r[2]) : null,
    etaMs: Number(r[3]) < 0 ? null : Number(r[3]),
    opensAt: opensAt >= 0 ? opensAt : null,
    pollAfterMs: Number(r[5]),
    paused: Number(r[6]) === 1,
  };
}

function toStats(r: RawStats): QueueStats {
  const n = r.map(Number);
  return {
    state: r[0] as LineState,
    waiting: n[1]!,
    preQueued: n[2]!,
    active: n[3]!,
    maxActive: n[4]!,
    activeTtlSeconds: n[5]!,
    idleTimeoutSeconds: n[6]!,
    paused: n[7] === 1,
    opensAt: n[8]! >= 0 ? n[8]! : null,
    admittedTotal: n[9]!,
    admittedLastMinute: n[10]!,
    droppedIdleTotal: n[11]!,
    etaBackMs: n[12]! < 0 ? null : n[12]!,
    seatsRead: n[13] === 1,
    admitBySeats: n[14] === 1,
  };
}
