/**
 * Baseline, front half: an express 5 handler that makes one NATS request and sends the reply's bytes back.
 * Nothing else: no validation, ids, metrics or logs. Env: NATS_URL, SUBJECT.
 */
import express from 'express';
import { connect } from '@nats-io/transport-node';

const nc = await connect({ servers: process.env.NATS_URL!, name: 'bench-baseline-front' });
const subject = process.env.SUBJECT ?? 'bench.baseline.get';
const encoder = new TextEncoder();

const app = express();
app.disable('x-powered-by');
app.use(express.json());
app.post('/api/assistant/chat', async (req, res) => {
  try {
    const m = await nc.request(subject, encoder.encode(JSON.stringify(req.body)), { timeout: 5000 });
    res.type('application/json').send(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
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
