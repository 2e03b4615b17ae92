import type { SessionMetadata } from './session-store.js';

/** The answer of `GET /api/websocket/stats` (this gateway's sockets). */
export interface WebSocketStats {
  active_connections: number;
  total_connections: number;
  messages_in: number;
  messages_out: number;
  errors: number;
  sessions: Array<SessionMetadata & { streaming: boolean }>;
  /** True when more sessions are open than the list shows. */
  sessions_truncated: boolean;
}

/** Plain counters behind the stats; the Prometheus metrics are counted beside them. */
export class SocketCounters {
  total = 0;
  messagesIn = 0;
  messagesOut = 0;
  errors = 0;
}
