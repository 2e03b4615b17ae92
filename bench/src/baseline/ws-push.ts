/**
 * Baseline for the WebSocket scenario: a bare `ws` server. On each client message it pushes one recorded
 * exchange of the gateway (the same messages, byte for byte: stream_start, stream_chunk..., stream_end,
 * response), round robin over the recordings. Env: RECORDS (a JSON file of string[][]; none = idle only).
 */
import { readFileSync } from 'node:fs';
import { WebSocketServer } from 'ws';

const records: string[][] = process.env.RECORDS ? (JSON.parse(readFileSync(process.env.RECORDS, 'utf8')) as string[][]) : [];
let next = 0;
const connected = JSON.stringify({ type: 'connected', session_id: 'bench' });

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 65_536 });
wss.on('connection', (ws) => {
  ws.send(connected);
  ws.on('message', () => {
    if (records.length === 0) return;
    const exchange = records[next++ % records.length]!;
    for (const raw of exchange) ws.send(raw);
  });
  ws.on('error', () => {});
});
wss.on('listening', () => {
  const addr = wss.address();
  process.send!({ listening: typeof addr === 'object' && addr ? addr.port : 0 });
});
process.on('SIGTERM', () => {
  for (const c of wss.clients) c.terminate();
  wss.close(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
