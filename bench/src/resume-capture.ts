/**
 * `npm run bench:resume`: what retaining every frame for resume costs per chunk on NATS.
 *
 * The workers' frames are core publishes; with the `CHAT_FRAMES` stream (memory, max_age, max_bytes,
 * max_msgs_per_subject) the server also stores each one. Measured here: publish N chunk frames (the JSON a worker
 * sends, ~150 bytes) over 200 request subjects and flush (the flush returns once the server has handled every
 * message before it, storing included), alternating rounds with the stream present and absent (the machine's
 * noise falls on both sides). Then the replay: an ordered consumer reading one answer of 1,000 chunks back.
 * Writes bench/results/resume.json. Loopback only; stops the nats-server it started.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { JetStreamAnswerLog } from '@actionedx/gateway';
import { ResumeStreamNames, Subjects, createLogger, encodeJson } from '@actionedx/shared';
import { ROOT, startNats } from '@actionedx/testkit';

const N = 50_000;
const ROUNDS = 6;
const SUBJECTS = 200;

const nats = await startNats();
const nc = await connect({ servers: nats.url });
const logger = createLogger({ service: 'bench', version: '0', level: 'silent', pretty: false });
const log = new JetStreamAnswerLog(async () => nc, {
  windowMs: 120_000,
  maxBytesPerAnswer: 1024 * 1024,
  storeMaxBytes: 256 * 1024 * 1024,
  answerTtlMs: 3_600_000,
  logger,
});
const frame = (i: number) =>
  encodeJson({ type: 'chunk', request_id: `r${i % SUBJECTS}`, attempt: 0, delivery: 1, seq: Math.floor(i / SUBJECTS), delta: ' formative assessment' });
const payloads = Array.from({ length: N }, (_, i) => frame(i));

async function round(): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < N; i++) nc.publish(Subjects.chatRetained('gw-bench', `r${i % SUBJECTS}`), payloads[i]);
  await nc.flush();
  return Number(process.hrtime.bigint() - started) / N; // ns per chunk
}

const jsm = await (await import('@nats-io/jetstream')).jetstreamManager(nc);
const bare: number[] = [];
const captured: number[] = [];
await round(); // warm up
for (let r = 0; r < ROUNDS; r++) {
  await jsm.streams.delete(ResumeStreamNames.frames).catch(() => false);
  bare.push(await round());
  await log.start();
  captured.push(await round());
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const info = await jsm.streams.info(ResumeStreamNames.frames);

// Replay: one answer of 1,000 chunks read back by an ordered consumer, as a resume does.
const subject = Subjects.chatRetained('gw-bench', 'replayed');
for (let seq = 0; seq < 1_000; seq++) nc.publish(subject, encodeJson({ type: 'chunk', request_id: 'replayed', attempt: 0, seq, delta: ' word' }));
await nc.flush();
const replayStarted = process.hrtime.bigint();
let seen = 0;
await new Promise<void>((resolve, reject) => {
  void log
    .follow(subject, () => {
      if (++seen === 1_000) resolve();
    }, reject)
    .then((feed) => setTimeout(() => feed.stop(), 10_000).unref());
});
const replayMs = Number(process.hrtime.bigint() - replayStarted) / 1e6;

const result = {
  chunks_per_round: N,
  rounds: ROUNDS,
  publish_and_flush_ns_per_chunk: { bare: Math.round(median(bare)), captured: Math.round(median(captured)) },
  extra_ns_per_chunk: Math.round(median(captured) - median(bare)),
  ratio: Number((median(captured) / median(bare)).toFixed(2)),
  stream_bytes_per_chunk: Math.round(info.state.bytes / info.state.messages),
  replay_1000_chunks_ms: Number(replayMs.toFixed(1)),
};
console.log(JSON.stringify(result, null, 2));
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(join(ROOT, 'bench/results/resume.json'), `${JSON.stringify(result, null, 2)}\n`);
await nc.close();
await nats.stop();
