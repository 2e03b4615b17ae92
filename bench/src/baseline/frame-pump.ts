/**
 * The frame pump: stands in for the orchestrators in the relay half of the WebSocket scenario, so that what is
 * measured is the gateway relaying frames, not a model generating them. Its own process, on the stack's
 * nats-server. It takes `chat.v1.request` jobs in the queue group `orchestrators` and answers each as a real
 * worker does, at token granularity: `ack`, then CHUNKS `chunk` frames (seq 0..CHUNKS-1, each its own NATS
 * message carrying one 4–7 character delta, as a model streaming token by token with no batching), then `done`
 * (`chunks: CHUNKS`, valid under the shared `DoneFrameSchema`). Every message carries the headers the real
 * worker sets (`x-request-id`, and the job's `traceparent`); the retained copy for resumes goes out as a worker's
 * does (`RetainedFrames`: batches of 20 ms). It also answers `orchestrator.v1.ping`.
 *
 * Pace: as fast as it can, never more than the gateway takes. Jobs are streamed round robin, BURST frames each
 * per round, one `flush` (a round trip to nats-server) per round; and at most WINDOW messages are out that the
 * gateway has not been seen to handle. The signal: every message goes to the gateway's one frame subscription,
 * in the order published, so when the next job of a WebSocket session arrives (its client sends a turn only
 * after the previous `response`), the gateway has handled that session's `done` and every message published
 * before it. The queue between the pump and the gateway thus stays bounded (WINDOW messages, a fraction of a
 * second of relaying). Jobs waiting for the window get a heartbeat when they have had nothing for
 * `heartbeat_ms`, as from a real worker. When every client pauses (the warm-up's end, the run's end) no job
 * comes to confirm anything: after STALL_MS with nothing to send, the window is taken as drained.
 *
 * Env: NATS_URL, CHUNKS (default 200), WINDOW (messages, default 8000), BURST (default 50), STALL_MS (default 50).
 * IPC: sends `{ready: true}` once subscribed; answers `{stats: id}` with `{stats: id, ...figures}`.
 */
import { connect, headers as natsHeaders, type Msg, type MsgHdrs } from '@nats-io/transport-node';
import {
  ChunkFrameSchema,
  DoneFrameSchema,
  Headers,
  QueueGroups,
  RetainedFrames,
  Subjects,
  encodeFrames,
  encodeJson,
  type ChunkFrame,
  type DoneFrame,
  type Frame,
  type Mode,
  type TaskType,
} from '@actionedx/shared';

const CHUNKS = Number(process.env.CHUNKS ?? 200);
const WINDOW = Number(process.env.WINDOW ?? 8000);
const BURST = Number(process.env.BURST ?? 50);
const STALL_MS = Number(process.env.STALL_MS ?? 50);
const WORKER_ID = `frame-pump-${process.pid}`;
/** Token-sized deltas, 4–7 characters each (about 5.4 on average). */
const DELTAS = [' Start', ' each', ' study', ' week', ' with', ' three', ' clear', ' goals,', ' then', ' review', ' your', ' notes', ' daily', ' and', ' adjust', ' the', ' plan.'];

interface Job {
  requestId: string;
  attempt: number;
  replyTo: string;
  /** The copy for resumes, as a worker publishes it (batched): what the gateway's CHAT_FRAMES stream captures. */
  retained: RetainedFrames | undefined;
  /** The WebSocket session the turn came from (its next job tells that this one was relayed). */
  session: string;
  heartbeatMs: number;
  mode: Mode;
  taskType: TaskType;
  hdrs: MsgHdrs;
  seq: number;
  t0: number;
  firstChunkAt: number;
  lastSentAt: number;
  /** Admitted to stream (its chunks and `done` counted in `planned`). */
  admitted: boolean;
  dropped: boolean;
}

const nc = await connect({ servers: process.env.NATS_URL!, name: WORKER_ID, noAsyncTraces: true, maxReconnectAttempts: -1 });

const waiting: Job[] = [];
let active: Job[] = [];
/** For each session whose last job is fully sent: how many messages had been published with its `done`. */
const sent = new Map<string, number>();
const byRequest = new Map<string, Job>();
/** Messages published, messages published or due from admitted jobs, messages the gateway is known to have handled. */
let published = 0;
let planned = 0;
let confirmed = 0;
let lastProgressAt = performance.now();
const stats = { jobs: 0, frames: 0, chunks: 0, heartbeats: 0, cancelled: 0, superseded: 0, rounds: 0, stallResets: 0, maxOutstanding: 0, maxWaiting: 0, invalid: 0, validated: 0 };

/** Publishes one message; `extra`: not part of an admitted job's plan (ack, heartbeat). */
const publish = (job: Job, frames: Frame[], extra = false): void => {
  nc.publish(job.replyTo, encodeFrames(frames), { headers: job.hdrs });
  job.retained?.add(frames, frames.some((f) => f.type === 'done'));
  job.lastSentAt = performance.now();
  published++;
  if (extra) planned++;
  stats.frames += frames.length;
};

function drop(job: Job): void {
  if (job.dropped) return;
  job.dropped = true;
  job.retained?.flush();
  byRequest.delete(job.requestId);
  const i = waiting.indexOf(job);
  if (i >= 0) waiting.splice(i, 1);
  if (job.admitted && active.includes(job)) {
    active = active.filter((j) => j !== job);
    planned -= CHUNKS - job.seq + 1; // its chunks not sent yet and its done
  }
}

function onJob(m: Msg): void {
  let raw: {
    request_id: string;
    attempt: number;
    reply_to: string;
    heartbeat_ms: number;
    request: { session_id?: string; user_id: string; mode?: Mode; task_type?: TaskType };
  };
  try {
    raw = JSON.parse(new TextDecoder().decode(m.data));
  } catch {
    return;
  }
  const session = raw.request.session_id ?? raw.request.user_id;
  // This session's previous turn has been relayed to the end, and so has every message published before it.
  const prev = sent.get(session);
  if (prev !== undefined) {
    sent.delete(session);
    if (prev > confirmed) confirmed = prev;
    lastProgressAt = performance.now();
  }
  const old = byRequest.get(raw.request_id);
  if (old) {
    stats.superseded++;
    drop(old);
  }
  const hdrs = natsHeaders();
  hdrs.set(Headers.requestId, raw.request_id);
  const tp = m.headers?.get(Headers.traceparent);
  if (tp) hdrs.set(Headers.traceparent, tp);
  const now = performance.now();
  const job: Job = {
    requestId: raw.request_id,
    attempt: raw.attempt,
    replyTo: raw.reply_to,
    retained: RetainedFrames.forReplyTo(raw.reply_to, (subject, data) => nc.publish(subject, data)),
    session,
    heartbeatMs: raw.heartbeat_ms,
    mode: raw.request.mode ?? 'strategist',
    taskType: raw.request.task_type ?? 'realtime_tutoring',
    hdrs,
    seq: 0,
    t0: now,
    firstChunkAt: now,
    lastSentAt: now,
    admitted: false,
    dropped: false,
  };
  stats.jobs++;
  byRequest.set(job.requestId, job);
  // The ack goes at once, alone: the job may wait for the window before its first chunk.
  publish(job, [{ type: 'ack', request_id: job.requestId, attempt: job.attempt, worker_id: WORKER_ID }], true);
  waiting.push(job);
  stats.maxWaiting = Math.max(stats.maxWaiting, waiting.length);
  wake();
}

function doneFrame(job: Job): DoneFrame {
  const end = performance.now();
  return {
    type: 'done',
    request_id: job.requestId,
    attempt: job.attempt,
    chunks: CHUNKS,
    suggestions: [],
    model: 'frame-pump',
    mode: job.mode,
    task_type: job.taskType,
    cached: false,
    usage: { prompt_tokens: 24, completion_tokens: CHUNKS, total_tokens: 24 + CHUNKS },
    cost_usd: 0,
    latency_ms: Math.round((end - job.t0) * 10) / 10,
    ttft_ms: Math.round((job.firstChunkAt - job.t0) * 10) / 10,
    worker_id: WORKER_ID,
  };
}

/** One round: every streaming job sends up to BURST chunk frames, each its own message; finished jobs send `done`. */
function round(): void {
  stats.rounds++;
  const still: Job[] = [];
  for (const job of active) {
    if (job.dropped) continue;
    if (job.seq === 0) job.firstChunkAt = performance.now();
    const end = Math.min(CHUNKS, job.seq + BURST);
    for (; job.seq < end; job.seq++) {
      const chunk: ChunkFrame = { type: 'chunk', request_id: job.requestId, attempt: job.attempt, seq: job.seq, delta: DELTAS[job.seq % DELTAS.length]! };
      publish(job, [chunk]);
      stats.chunks++;
    }
    if (job.seq < CHUNKS) {
      still.push(job);
      continue;
    }
    const done = doneFrame(job);
    if (stats.validated < 10) {
      stats.validated++;
      if (!DoneFrameSchema.safeParse(done).success) stats.invalid++;
    }
    publish(job, [done]);
    byRequest.delete(job.requestId);
    sent.set(job.session, published);
    lastProgressAt = performance.now();
  }
  active = still;
}

/** Starts waiting jobs while the window allows (one at least when nothing is out, so the pump never stalls). */
function admit(): void {
  while (waiting.length > 0 && (planned - confirmed + CHUNKS + 1 <= WINDOW || planned === confirmed)) {
    const job = waiting.shift()!;
    job.admitted = true;
    planned += CHUNKS + 1;
    active.push(job);
  }
  stats.maxOutstanding = Math.max(stats.maxOutstanding, planned - confirmed);
}

let wakeUp: (() => void) | undefined;
function wake(): void {
  const w = wakeUp;
  wakeUp = undefined;
  w?.();
}

let running = true;
async function loop(): Promise<void> {
  while (running) {
    admit();
    if (active.length === 0) {
      await new Promise<void>((r) => (wakeUp = r));
      continue;
    }
    round();
    // Nothing more until nats-server has taken this round: the pump never runs ahead of the server.
    await nc.flush();
  }
}

// Heartbeats for jobs that have had nothing for heartbeat_ms (waiting for the window), as a real worker sends;
// and the window taken as drained when everything admitted is out and nothing has happened for STALL_MS since
// the last `done` went out or the last confirmation came.
const ticker = setInterval(() => {
  const now = performance.now();
  for (const job of waiting) {
    if (now - job.lastSentAt >= job.heartbeatMs) {
      publish(job, [{ type: 'heartbeat', request_id: job.requestId, attempt: job.attempt }], true);
      stats.heartbeats++;
    }
  }
  if (waiting.length > 0 && active.length === 0 && planned > confirmed && now - lastProgressAt >= STALL_MS) {
    confirmed = planned;
    lastProgressAt = now;
    stats.stallResets++;
  }
  admit();
  wake();
}, 25);

// Self-check: what the pump sends is what the shared contracts accept.
{
  const probe: Job = { requestId: 'probe', attempt: 0, replyTo: '', retained: undefined, session: '', heartbeatMs: 1000, mode: 'strategist', taskType: 'realtime_tutoring', hdrs: natsHeaders(), seq: 0, t0: 0, firstChunkAt: 0, lastSentAt: 0, admitted: false, dropped: false };
  DoneFrameSchema.parse(doneFrame(probe));
  ChunkFrameSchema.parse({ type: 'chunk', request_id: 'probe', attempt: 0, seq: 0, delta: DELTAS[0] });
}

nc.subscribe(Subjects.chatRequest, { queue: QueueGroups.orchestrators, callback: (err, m) => void (err ? undefined : onJob(m)) });
nc.subscribe(Subjects.chatCancel, {
  callback: (err, m) => {
    if (err) return;
    try {
      const { request_id } = JSON.parse(new TextDecoder().decode(m.data)) as { request_id: string };
      const job = byRequest.get(request_id);
      if (job) {
        stats.cancelled++;
        drop(job);
      }
    } catch {
      /* not a cancel */
    }
  },
});
nc.subscribe(Subjects.workerPing, {
  queue: QueueGroups.orchestrators,
  callback: (err, m) => {
    if (!err && m.reply) nc.publish(m.reply, encodeJson({ ok: true, data: { worker_id: WORKER_ID, in_flight: byRequest.size } }));
  },
});
await nc.flush();
void loop().catch((err: unknown) => {
  console.error('frame pump loop failed', err);
  process.exit(1);
});

process.on('message', (msg: { stats?: number }) => {
  if (typeof msg?.stats === 'number') process.send!({ stats: msg.stats, ...stats, outstanding: planned - confirmed, waiting: waiting.length, active: active.length, cpu_s: cpuSeconds() });
});
const cpuSeconds = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};

async function stop(): Promise<void> {
  running = false;
  clearInterval(ticker);
  wake();
  try {
    await nc.close();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', () => void stop());
process.on('disconnect', () => void stop());
process.send!({ ready: true, chunks: CHUNKS, window: WINDOW, burst: BURST, stallMs: STALL_MS });
