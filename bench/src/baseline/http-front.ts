/**
 * Baseline, front half: an express 5 handler that makes one NATS request and sends the reply's bytes back.
 * Nothing else: no validation, ids, metrics or logs. Used by the cached scenario (worker: one Redis GET) and the
 * miss-throughput scenario (worker: one streamed model call). Env: NATS_URL, SUBJECT, TIMEOUT_MS (default 5000).
 */
import express from 'express';
import { connect } from '@nats-io/transport-node';

const nc = await connect({ servers: process.env.NATS_URL!, name: 'bench-baseline-front' });
const subject = process.env.SUBJECT ?? 'bench.baseline.get';
const encoder = new TextEncoder();
const timeout = Number(process.env.TIMEOUT_MS ?? 5000);

const app = express();
app.disable('x-powered-by');
app.use(express.json());
app.post('/api/assistant/chat', async (req, res) => {
  try {
    const m = await nc.request(subject, encoder.encode(JSON.stringify(req.body)), { timeout });
    // An empty reply is the workers' failure (no answer): a 502, so that wrk counts it as an error.
    if (m.data.byteLength === 0) res.status(502).json({ error: 'the worker had no answer' });
    else res.type('application/json').send(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
  } catch (err) {
    res.status(503).json({ error: String(err) });
  }
});

const server = app.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.send!({ listening: typeof addr === 'object' && addr ? addr.port : 0 });
});
process.on('SIGTERM', () => {
  server.close();
  void nc.close().finally(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
