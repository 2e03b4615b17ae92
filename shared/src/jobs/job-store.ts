import type { Redis } from 'ioredis';
import {
  JobErrorSchema,
  JobEventSchema,
  JobResultSchema,
  JOB_KINDS,
  JOB_STATES,
  isTerminalJobState,
  ownerKey,
  type JobError,
  type JobEvent,
  type JobEventDraft,
  type JobInput,
  type JobKind,
  type JobResult,
  type JobState,
} from '../contracts/jobs.js';
import { MODES, TASK_TYPES, UsageSchema, type Mode, type TaskType, type Usage } from '../contracts/chat.js';

/** What the platform keeps of a job: the API's source of truth, written by the gateway and the job workers. */
export interface JobRecord {
  id: string;
  kind: JobKind;
  /** The user who submitted it; only they see it. */
  owner: string;
  state: JobState;
  percent: number;
  message: string;
  task_type: TaskType;
  mode: Mode;
  title: string | null;
  session_id: string | null;
  use_cache: boolean;
  input: JobInput;
  webhook_url: string | null;
  /** Epoch milliseconds. */
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  attempts: number;
  steps_total: number;
  steps_done: number;
  cancel_requested: boolean;
  result: JobResult | null;
  error: JobError | null;
  usage: Usage;
  cost_usd: number;
  webhook_state: 'pending' | 'delivered' | 'failed' | null;
  webhook_attempts: number;
}

/** One finished step, kept with the job so that a retried job skips it (and does not pay for it again). */
export interface StepRecord {
  index: number;
  label: string;
  response: string;
  suggestions: string[];
  model: string;
  cached: boolean;
  usage: Usage;
  cost_usd: number;
  /** Which worker, in which attempt, ran it. */
  worker_id: string;
  attempt: number;
  ms: number;
}

export type NewJob = Pick<
  JobRecord,
  'id' | 'kind' | 'owner' | 'task_type' | 'mode' | 'title' | 'session_id' | 'use_cache' | 'input' | 'webhook_url' | 'created_at' | 'steps_total'
>;

/** Fields a running job may change (never after it reached a terminal state). */
export type JobUpdate = Partial<
  Pick<
    JobRecord,
    'state' | 'percent' | 'message' | 'started_at' | 'finished_at' | 'attempts' | 'steps_total' | 'steps_done' | 'result' | 'error' | 'usage' | 'cost_usd'
  >
>;

export interface JobStoreOptions {
  /** Key prefix. Default `actionedx:job`. */
  prefix?: string;
  /** How long a finished job (record, steps, events) is kept. Default 7 days. */
  retentionSeconds?: number;
  /** Events kept per job (the oldest are dropped beyond). Default 1000. */
  maxEvents?: number;
}

const ZERO_USAGE: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
const TERMINAL = ['completed', 'failed', 'cancelled'];

/**
 * Lua, as ioredis commands. A job's record only changes while it is live: once completed, failed or cancelled,
 * a late write (a worker that lost its lock, a cancel racing the end) changes nothing.
 */
const SCRIPTS = {
  /** KEYS: record, steps, events. ARGV: ttl seconds ('0': none), then field/value pairs. 1 if applied. */
  jobUpdate: {
    numberOfKeys: 3,
    lua: `
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == '${TERMINAL[0]}' or state == '${TERMINAL[1]}' or state == '${TERMINAL[2]}' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end
return 1
`,
  },
  /** KEYS: record. ARGV: field/value pairs. Sets them only on a job that still exists (no orphan hash). */
  jobSetIfExists: {
    numberOfKeys: 1,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`,
  },
  /** KEYS: record, events. ARGV: event JSON without seq, max events. Numbers the event; returns its seq (0: no job). */
  jobEvent: {
    numberOfKeys: 2,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('RPUSH', KEYS[2], seq .. '\\n' .. ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
local ttl = redis.call('TTL', KEYS[1])
if ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return seq
`,
  },
} as const;

interface JobScripts {
  jobUpdate(record: string, steps: string, events: string, ttl: number, ...fields: string[]): Promise<number>;
  jobEvent(record: string, events: string, json: string, maxEvents: number): Promise<number>;
  jobSetIfExists(record: string, ...fields: string[]): Promise<number>;
}

const defined = new WeakSet<Redis>();

/**
 * Jobs on the queue Redis (a hash per job, its steps and events beside it, a sorted set per owner), next to
 * BullMQ's own keys, which schedule the work. BullMQ says what runs where; this says what the client sees.
 */
export class JobStore {
  private readonly redis: Redis & JobScripts;
  private readonly prefix: string;
  readonly retentionSeconds: number;
  private readonly maxEvents: number;

  constructor(redis: Redis, opts: JobStoreOptions = {}) {
    if (!defined.has(redis)) {
      for (const [name, script] of Object.entries(SCRIPTS)) redis.defineCommand(name, script);
      defined.add(redis);
    }
    this.redis = redis as Redis & JobScripts;
    this.prefix = opts.prefix ?? 'actionedx:job';
    this.retentionSeconds = opts.retentionSeconds ?? 7 * 24 * 3600;
    this.maxEvents = opts.maxEvents ?? 1000;
  }

  private keys(id: string) {
    return { record: `${this.prefix}:${id}`, steps: `${this.prefix}:${id}:steps`, events: `${this.prefix}:${id}:events` };
  }

  private ownerIndex(owner: string): string {
    return `${this.prefix}s:owner:${ownerKey(owner)}`;
  }

  async create(job: NewJob): Promise<JobRecord> {
    const record: JobRecord = {
      ...job,
      state: 'queued',
      percent: 0,
      message: 'queued',
      started_at: null,
      finished_at: null,
      attempts: 0,
      steps_done: 0,
      cancel_requested: false,
      result: null,
      error: null,
      usage: ZERO_USAGE,
      cost_usd: 0,
      webhook_state: job.webhook_url ? 'pending' : null,
      webhook_attempts: 0,
    };
    await this.redis
      .multi()
      .hset(this.keys(job.id).record, encode(record))
      .zadd(this.ownerIndex(job.owner), job.created_at, job.id)
      .exec()
      .then(checkExec);
    return record;
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const hash = await this.redis.hgetall(this.keys(id).record);
    return decode(hash);
  }

  /** The owner's jobs, newest first; jobs past their retention drop out of the index as they are met. */
  async list(owner: string, offset: number, limit: number): Promise<{ jobs: JobRecord[]; total: number }> {
    const index = this.ownerIndex(owner);
    const [total, ids] = await Promise.all([this.redis.zcard(index), this.redis.zrevrange(index, offset, offset + limit - 1)]);
    if (ids.length === 0) return { jobs: [], total };
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys(id).record);
    const hashes = checkExec(await pipeline.exec()) as Record<string, string>[];
    const jobs: JobRecord[] = [];
    const gone: string[] = [];
    hashes.forEach((h, i) => {
      const rec = decode(h);
      if (rec) jobs.push(rec);
      else gone.push(ids[i]!);
    });
    if (gone.length > 0) await this.redis.zrem(index, ...gone);
    return { jobs, total: total - gone.length };
  }

  /** Applies `update` unless the job has ended; a terminal state starts the retention clock. True if applied. */
  async update(id: string, update: JobUpdate): Promise<boolean> {
    const k = this.keys(id);
    const terminal = update.state !== undefined && isTerminalJobState(update.state);
    const fields = Object.entries(encode(update)).flat();
    if (fields.length === 0) return false;
    return (await this.redis.jobUpdate(k.record, k.steps, k.events, terminal ? this.retentionSeconds : 0, ...fields)) === 1;
  }

  /** Marks the job for cancelling (the worker running it stops at once or at its next step). */
  async requestCancel(id: string): Promise<boolean> {
    const k = this.keys(id);
    return (await this.redis.jobUpdate(k.record, k.steps, k.events, 0, 'cancel_requested', '1')) === 1;
  }

  async cancelRequested(id: string): Promise<boolean> {
    return (await this.redis.hget(this.keys(id).record, 'cancel_requested')) === '1';
  }

  async saveStep(id: string, step: StepRecord): Promise<void> {
    await this.redis.hset(this.keys(id).steps, String(step.index), JSON.stringify(step));
  }

  /** The steps finished so far, by index. */
  async steps(id: string): Promise<Map<number, StepRecord>> {
    const hash = await this.redis.hgetall(this.keys(id).steps);
    const out = new Map<number, StepRecord>();
    for (const [k, v] of Object.entries(hash)) out.set(Number(k), JSON.parse(v) as StepRecord);
    return out;
  }

  async setWebhook(id: string, state: 'pending' | 'delivered' | 'failed', attempts: number): Promise<void> {
    // Deliveries happen after the job ended: not the live-only guard, but never recreating an expired record.
    await this.redis.jobSetIfExists(this.keys(id).record, 'webhook_state', state, 'webhook_attempts', String(attempts));
  }

  /** Numbers an event and keeps it for replay (SSE `Last-Event-ID`); 0 when the job does not exist. */
  async appendEvent(draft: JobEventDraft): Promise<JobEvent | undefined> {
    const k = this.keys(draft.job_id);
    const seq = await this.redis.jobEvent(k.record, k.events, JSON.stringify(draft), this.maxEvents);
    return seq > 0 ? ({ ...draft, seq }) : undefined;
  }

  /** The kept events with a seq above `afterSeq`, in order. */
  async events(id: string, afterSeq = 0): Promise<JobEvent[]> {
    const raw = await this.redis.lrange(this.keys(id).events, 0, -1);
    const out: JobEvent[] = [];
    for (const line of raw) {
      const nl = line.indexOf('\n');
      const seq = Number(line.slice(0, nl));
      if (seq <= afterSeq) continue;
      const parsed = JobEventSchema.safeParse({ ...(JSON.parse(line.slice(nl + 1)) as object), seq });
      if (parsed.success) out.push(parsed.data);
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** Removes a job and everything kept with it (tests, administration). */
  async delete(id: string): Promise<void> {
    const rec = await this.get(id);
    const k = this.keys(id);
    await this.redis.del(k.record, k.steps, k.events);
    if (rec) await this.redis.zrem(this.ownerIndex(rec.owner), id);
  }
}

function checkExec(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error('transaction aborted');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

const JSON_FIELDS = new Set(['input', 'result', 'error', 'usage']);
const BOOL_FIELDS = new Set(['use_cache', 'cancel_requested']);

/** A record (or part of one) as hash fields: JSON for objects, '' for null, '1'/'0' for booleans. */
function encode(fields: Partial<JobRecord>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    if (v === null) out[k] = '';
    else if (JSON_FIELDS.has(k)) out[k] = JSON.stringify(v);
    else if (BOOL_FIELDS.has(k)) out[k] = v ? '1' : '0';
    else out[k] = typeof v === 'number' ? String(v) : (v as string);
  }
  return out;
}

const str = (v: string | undefined): string | null => (v === undefined || v === '' ? null : v);
const num = (v: string | undefined): number | null => (v === undefined || v === '' ? null : Number(v));
const json = <T>(v: string | undefined, parse: (x: unknown) => T): T | null => (v === undefined || v === '' ? null : parse(JSON.parse(v)));

function decode(h: Record<string, string>): JobRecord | undefined {
  if (!h.id || !h.state) return undefined;
  const oneOf = <T extends string>(list: readonly T[], v: string | undefined, fallback: T): T => (list.includes(v as T) ? (v as T) : fallback);
  return {
    id: h.id,
    kind: oneOf(JOB_KINDS, h.kind, 'document_audit'),
    owner: h.owner ?? '',
    state: oneOf(JOB_STATES, h.state, 'queued'),
    percent: num(h.percent) ?? 0,
    message: h.message ?? '',
    task_type: oneOf(TASK_TYPES, h.task_type, 'strategy_audit'),
    mode: oneOf(MODES, h.mode, 'strategist'),
    title: str(h.title),
    session_id: str(h.session_id),
    use_cache: h.use_cache !== '0',
    input: json(h.input, (x) => x as JobInput) ?? ({} as JobInput),
    webhook_url: str(h.webhook_url),
    created_at: num(h.created_at) ?? 0,
    started_at: num(h.started_at),
    finished_at: num(h.finished_at),
    attempts: num(h.attempts) ?? 0,
    steps_total: num(h.steps_total) ?? 0,
    steps_done: num(h.steps_done) ?? 0,
    cancel_requested: h.cancel_requested === '1',
    result: json(h.result, (x) => JobResultSchema.parse(x)),
    error: json(h.error, (x) => JobErrorSchema.parse(x)),
    usage: json(h.usage, (x) => UsageSchema.parse(x)) ?? ZERO_USAGE,
    cost_usd: num(h.cost_usd) ?? 0,
    webhook_state: h.webhook_state === 'pending' || h.webhook_state === 'delivered' || h.webhook_state === 'failed' ? h.webhook_state : null,
    webhook_attempts: num(h.webhook_attempts) ?? 0,
  };
}
