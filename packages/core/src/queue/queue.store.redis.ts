import type { RedisClient } from '../redis/client.ts';
import { QUEUE_REGISTRY_KEY, queueKeyList, seatMapVersionsKey } from '../redis/keys.ts';
import {
  ADMIT_BATCH,
  ADMITS_KEPT_MS,
  CLEANUP_BATCH,
  HEAD_PLACES,
  type EnterResult,
  type GateState,
  type QueueSettings,
  type QueueSettingsPatch,
  type QueueStats,
  type QueueStore,
  RATE_WINDOW_MS,
  type TokenState,
} from './queue.store.ts';

/*
 * Every change is one Lua script over one concert's keys (one Cluster slot), so Redis runs it
 * whole and alone: two API processes settling the same line at once run one after the other,
 * and the admission loop reads the ACTIVE count and fills up to maxActive in the same step.
 *
 * KEYS: 1 waiting, 2 active, 3 seen, 4 owners, 5 users, 6 config, 7 admits, 8 counters, 9 polls.
 * ARGV: 1 now (ms), 2..5 default maxActive, activeTtlSeconds, idleTimeoutSeconds, paused (0/1), then the script's own.
 */
const PRELUDE = `
local now = tonumber(ARGV[1])
local function settings()
  local c = redis.call('HMGET', KEYS[6], 'maxActive', 'activeTtlSeconds', 'idleTimeoutSeconds', 'paused')
  return tonumber(c[1]) or tonumber(ARGV[2]), tonumber(c[2]) or tonumber(ARGV[3]),
         tonumber(c[3]) or tonumber(ARGV[4]), tonumber(c[4]) or tonumber(ARGV[5])
end
local function drop(t)
  local live = redis.call('ZREM', KEYS[1], t) + redis.call('ZREM', KEYS[2], t)
  redis.call('ZREM', KEYS[3], t)
  redis.call('HDEL', KEYS[9], t)
  local owner = redis.call('HGET', KEYS[4], t)
  if owner then
    local uid = string.match(owner, '^(%d+):')
    if redis.call('HGET', KEYS[5], uid) == t then redis.call('HDEL', KEYS[5], uid) end
    redis.call('HDEL', KEYS[4], t)
  end
  return live
end
local function settle()
  local maxActive, ttl, idle, paused = settings()
  for _, t in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, ${CLEANUP_BATCH})) do drop(t) end
  for _, t in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - idle * 1000, 'LIMIT', 0, ${CLEANUP_BATCH})) do drop(t) end
  if paused == 0 then
    local free = math.min(maxActive - redis.call('ZCARD', KEYS[2]), ${ADMIT_BATCH})
    if free > 0 then
      local heads = redis.call('ZRANGE', KEYS[1], 0, free - 1)
      for _, t in ipairs(heads) do
        redis.call('ZREM', KEYS[1], t)
        redis.call('ZREM', KEYS[3], t)
        redis.call('ZADD', KEYS[2], now + ttl * 1000, t)
        redis.call('ZADD', KEYS[7], now, t)
      end
      if #heads > 0 then redis.call('HINCRBY', KEYS[8], 'admitted', #heads) end
    end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - ${ADMITS_KEPT_MS})
  return paused, idle
end
-- Mirrors pollAfter() in queue.store.ts.
local function pollAfter(s)
  if s[1] == 'EXPIRED' then return 60000 end
  if s[1] == 'ACTIVE' then return math.max(1000, math.min(30000, math.floor((s[3] - now) / 2))) end
  local ceiling = math.min(30000, math.floor(s[6] * 1000 / 3))
  if s[2] <= ${HEAD_PLACES} then return math.min(1000, ceiling) end
  local byEta = 0
  if s[5] == 0 and s[4] > 0 then byEta = math.ceil(s[2] * 60 / s[4]) * 250 end
  return math.max(math.min(1000, ceiling), math.min(ceiling, math.max(s[2] * 50, byEta)))
end
local function state(t, paused, idle)
  local rate = redis.call('ZCOUNT', KEYS[7], '(' .. (now - ${RATE_WINDOW_MS}), '+inf')
  local untilMs = redis.call('ZSCORE', KEYS[2], t)
  local s
  if untilMs then
    s = {'ACTIVE', 0, tonumber(untilMs), rate, paused, idle}
  else
    local rank = redis.call('ZRANK', KEYS[1], t)
    if rank then s = {'WAITING', rank + 1, 0, rate, paused, idle} else s = {'EXPIRED', 0, 0, rate, paused, idle} end
  end
  s[7] = pollAfter(s)
  return s
end
`;

const SCRIPTS = {
  // ARGV 6 userId, 7 new tokenId
  queueEnter: `${PRELUDE}
local paused, idle = settle()
local t = redis.call('HGET', KEYS[5], ARGV[6])
local created = 0
if not (t and (redis.call('ZSCORE', KEYS[1], t) or redis.call('ZSCORE', KEYS[2], t))) then
  t = ARGV[7]
  created = 1
  local seq = redis.call('HINCRBY', KEYS[8], 'seq', 1)
  redis.call('ZADD', KEYS[1], seq, t)
  redis.call('ZADD', KEYS[3], now, t)
  redis.call('HSET', KEYS[4], t, ARGV[6] .. ':' .. now)
  redis.call('HSET', KEYS[5], ARGV[6], t)
  paused, idle = settle()
else
  redis.call('ZADD', KEYS[3], 'XX', now, t)
end
local owner = redis.call('HGET', KEYS[4], t)
local s = state(t, paused, idle)
return {s[1], s[2], s[3], s[4], s[5], s[6], s[7], t, string.match(owner, ':(%d+)$'), created}
`,
  // ARGV 6 tokenId, 7 limit polls (0/1)
  queueStatus: `${PRELUDE}
local t = ARGV[6]
local paused, idle = settle()
if ARGV[7] == '1' then
  local earliest = tonumber(redis.call('HGET', KEYS[9], t) or '0')
  if now < earliest then return {'RATE_LIMITED', earliest - now} end
end
redis.call('ZADD', KEYS[3], 'XX', now, t)
local s = state(t, paused, idle)
if s[1] ~= 'EXPIRED' then redis.call('HSET', KEYS[9], t, now + math.floor(s[7] / 2)) end
return s
`,
  // ARGV 6 tokenId
  queueLeave: `${PRELUDE}
local live = drop(ARGV[6])
settle()
return live
`,
  // ARGV 6.. field, value pairs of settings to store
  queueStats: `${PRELUDE}
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[6], ARGV[i], ARGV[i + 1]) end
settle()
local maxActive, ttl, idle, paused = settings()
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), maxActive, ttl, idle, paused,
        tonumber(redis.call('HGET', KEYS[8], 'admitted') or '0'),
        redis.call('ZCOUNT', KEYS[7], '(' .. (now - ${RATE_WINDOW_MS}), '+inf')}
`,
  queueSettle: `${PRELUDE}
settle()
return redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2])
`,
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptFn = (...args: Array<string | number>) => Promise<unknown>;

// The gate's check: read-only, no settling, one round trip; ARGV[3], when given, is a schedule
// whose seat-map epoch and version (KEYS[3]) come back with it.
const CHECK = `
local v = {false, false}
if ARGV[3] ~= '' then v = redis.call('HMGET', KEYS[3], 'epoch', ARGV[3]) end
local state = 'EXPIRED'
local untilMs = redis.call('ZSCORE', KEYS[2], ARGV[2])
if untilMs and tonumber(untilMs) > tonumber(ARGV[1]) then state = 'ACTIVE'
elseif redis.call('ZSCORE', KEYS[1], ARGV[2]) then state = 'WAITING' end
return {state, v[1], v[2]}
`;

export class RedisQueueStore implements QueueStore {
  private readonly registered = new Set<number>();

  constructor(private readonly redis: RedisClient) {
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: 9, lua });
    }
    if (!('queueCheck' in redis)) redis.defineCommand('queueCheck', { numberOfKeys: 3, lua: CHECK });
  }

  private run(name: ScriptName | 'queueCheck', concertId: number, now: number, defaults: QueueSettings | undefined, ...args: Array<string | number>) {
    const fn = (this.redis as unknown as Record<string, ScriptFn>)[name]!.bind(this.redis);
    const keys = queueKeyList(concertId);
    if (name === 'queueCheck') return fn(keys[0]!, keys[1]!, seatMapVersionsKey(concertId), now, ...args);
    const d = defaults!;
    return fn(...keys, now, d.maxActive, d.activeTtlSeconds, d.idleTimeoutSeconds, d.paused ? 1 : 0, ...args);
  }

  async enter(concertId: number, userId: number, newTokenId: string, now: number, defaults: QueueSettings): Promise<EnterResult> {
    const [raw] = await Promise.all([this.run('queueEnter', concertId, now, defaults, userId, newTokenId), this.register(concertId)]);
    const r = raw as [...RawState, string, string, number];
    return { ...toState(r.slice(0, 7) as RawState), tokenId: r[7], enteredAt: Number(r[8]), created: r[9] === 1 };
  }

  async status(concertId: number, tokenId: string, now: number, defaults: QueueSettings, limitPolls: boolean): Promise<TokenState | { rateLimited: number }> {
    const r = (await this.run('queueStatus', concertId, now, defaults, tokenId, limitPolls ? 1 : 0)) as RawState | ['RATE_LIMITED', number];
    return r[0] === 'RATE_LIMITED' ? { rateLimited: Number(r[1]) } : toState(r as RawState);
  }

  async check(concertId: number, tokenId: string, now: number, seatMapOf?: number) {
    const [state, epoch, n] = (await this.run('queueCheck', concertId, now, undefined, tokenId, seatMapOf ?? '')) as [GateState, string | null, string | null];
    if (seatMapOf === undefined) return { state };
    return { state, seatMapVersion: epoch === null ? null : { epoch, n: Number(n ?? 0) } };
  }

  async leave(concertId: number, tokenId: string, now: number, defaults: QueueSettings): Promise<boolean> {
    return (await this.run('queueLeave', concertId, now, defaults, tokenId)) === 1;
  }

  async tick(now: number, defaults: QueueSettings): Promise<void> {
    const concerts = await this.concerts();
    await Promise.all(concerts.map((id) => this.run('queueSettle', id, now, defaults)));
  }

  async concerts(): Promise<number[]> {
    return (await this.redis.smembers(QUEUE_REGISTRY_KEY)).map(Number);
  }

  async stats(concertId: number, now: number, defaults: QueueSettings): Promise<QueueStats> {
    return toStats((await this.run('queueStats', concertId, now, defaults)) as number[]);
  }

  async configure(concertId: number, patch: QueueSettingsPatch, now: number, defaults: QueueSettings): Promise<QueueStats> {
    const pairs: Array<string | number> = [];
    for (const [k, v] of Object.entries(patch)) if (v !== undefined) pairs.push(k, typeof v === 'boolean' ? (v ? 1 : 0) : v);
    const [r] = await Promise.all([this.run('queueStats', concertId, now, defaults, ...pairs), this.register(concertId)]);
    return toStats(r as number[]);
  }

  /** Adds the concert to the ticker's registry, once per process (the set only ever grows). */
  private async register(concertId: number): Promise<void> {
    if (this.registered.has(concertId)) return;
    await this.redis.sadd(QUEUE_REGISTRY_KEY, String(concertId));
    this.registered.add(concertId);
  }

  async ping(): Promise<boolean> {
    return (await this.redis.ping()) === 'PONG';
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

type RawState = [string, number, string, number, number, number, number];

function toState(r: RawState): TokenState {
  const status = r[0] as TokenState['status'];
  return {
    status,
    position: status === 'WAITING' ? Number(r[1]) : null,
    activeUntil: status === 'ACTIVE' ? Number(r[2]) : null,
    admittedLastMinute: Number(r[3]),
    paused: Number(r[4]) === 1,
    idleTimeoutSeconds: Number(r[5]),
    pollAfterMs: Number(r[6]),
  };
}

function toStats(r: number[]): QueueStats {
  const n = r.map(Number);
  return {
    waiting: n[0]!,
    active: n[1]!,
    maxActive: n[2]!,
    activeTtlSeconds: n[3]!,
    idleTimeoutSeconds: n[4]!,
    paused: n[5] === 1,
    admittedTotal: n[6]!,
    admittedLastMinute: n[7]!,
  };
}
