import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, createMetricsRegistry, InProcessBus, type WsServerMessage } from '@actionedx/shared';
import { createGatewayMetrics } from '../metrics.js';
import { MemoryCollabStore } from './memory-collab-store.js';
import { SessionHub, type LocalMember } from './session-hub.js';

const logger = createLogger({ service: 'gateway', version: 'test', level: 'silent', pretty: false });

/** A store whose first presence write times out, as a loaded Redis may. */
class FlakyPresenceStore extends MemoryCollabStore {
  failures = 1;
  override async touchPresence(sessionId: string, connKey: string, userId: string, ttlMs: number): Promise<void> {
    if (this.failures-- > 0) throw new Error('Command timed out');
    return super.touchPresence(sessionId, connKey, userId, ttlMs);
  }
}

describe('SessionHub presence', () => {
  const hubs: SessionHub[] = [];
  afterEach(() => {
    for (const h of hubs.splice(0)) h.close();
  });

  it("sends a socket its session's presence at the next renewal when the join's own announcement failed", async () => {
    const bus = new InProcessBus();
    const store = new FlakyPresenceStore();
    const sessionId = `cs_${randomBytes(16).toString('hex')}`;
    await store.create({ session_id: sessionId, owner: 'alice', mode: 'ally', title: 't', join_token: 'x'.repeat(32), created_at: new Date().toISOString() });
    const hub = new SessionHub({
      bus,
      store,
      logger,
      metrics: createGatewayMetrics(createMetricsRegistry('gateway', { defaultMetrics: false })).sessions,
      limits: { maxMembers: 5, presenceTtlMs: 300, turnLeaseMs: 1_000 },
      gatewayId: 'gw-test',
    });
    hubs.push(hub);
    hub.start();
    const frames: WsServerMessage[] = [];
    const member: LocalMember = { sessionId, userId: 'alice', connKey: 'gw-test.1', deliver: (f) => frames.push(f), modeSwitched: () => {}, evict: () => {} };
    hub.attach(member);
    // The renewal runs every 100 ms here (a third of the TTL): the presence comes with the first one that works.
    await expect.poll(() => frames.find((f) => f.type === 'presence'), { timeout: 2_000 }).toMatchObject({
      type: 'presence',
      members: [{ user_id: 'alice', online: true, connections: 1 }],
    });
  });
});
