import type { Logger, Redis } from '@actionedx/shared';

/** One WebSocket's claim on one of its user's slots. */
export interface SlotClaim {
  userId: string;
  /** Unique across replicas: `<gateway id>:<n>`. */
  connectionId: string;
}

/**
 * Where the WebSocket slots of each user are counted. Redis: every replica sees every slot; a slot is a
 * lease that its replica renews while the socket lives, so a replica that dies without closing its
 * sockets frees them when their leases run out. Memory: this replica only.
 */
export interface SlotStore {
  readonly kind: 'redis' | 'memory';
  /** Take a slot when the user holds fewer than `cap`; throws when the store fails. */
  acquire(claim: SlotClaim, cap: number, leaseMs: number): Promise<boolean>;
  release(claim: SlotClaim): Promise<void>;
  renew(claims: readonly SlotClaim[], leaseMs: number): Promise<void>;
}

const slotKey = (userId: string): string => `ws_slots:${encodeURIComponent(userId)}`;

// KEYS[1] the user's sorted set (member: connection id, score: lease end). ARGV: now, lease end, cap, member, key ttl.
const ACQUIRE_LUA = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`;
// Only slots still held are renewed (XX): a slot already swept stays gone.
const RENEW_LUA = `
redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

type SlotCommands = Redis & {
  wsSlotAcquire(key: string, now: number, leaseEnd: number, cap: number, member: string, ttlMs: number): Promise<number>;
  wsSlotRenew(key: string, leaseEnd: number, member: string, ttlMs: number): Promise<number>;
};

export class RedisSlotStore implements SlotStore {
  readonly kind = 'redis';
  private readonly redis: SlotCommands;

  constructor(redis: Redis) {
    redis.defineCommand('wsSlotAcquire', { numberOfKeys: 1, lua: ACQUIRE_LUA });
    redis.defineCommand('wsSlotRenew', { numberOfKeys: 1, lua: RENEW_LUA });
    this.redis = redis as SlotCommands;
  }

  async acquire(claim: SlotClaim, cap: number, leaseMs: number): Promise<boolean> {
    const now = Date.now();
    return (await this.redis.wsSlotAcquire(slotKey(claim.userId), now, now + leaseMs, cap, claim.connectionId, leaseMs * 2)) === 1;
  }

  async release(claim: SlotClaim): Promise<void> {
    await this.redis.zrem(slotKey(claim.userId), claim.connectionId);
  }

  async renew(claims: readonly SlotClaim[], leaseMs: number): Promise<void> {
    if (claims.length === 0) return;
    const leaseEnd = Date.now() + leaseMs;
    const pipeline = this.redis.pipeline() as unknown as { wsSlotRenew(...args: unknown[]): void; exec(): Promise<unknown> };
    for (const c of claims) pipeline.wsSlotRenew(slotKey(c.userId), leaseEnd, c.connectionId, leaseMs * 2);
    await pipeline.exec();
  }
}

export class MemorySlotStore implements SlotStore {
  readonly kind = 'memory';
  private readonly slots = new Map<string, Set<string>>();

  async acquire(claim: SlotClaim, cap: number): Promise<boolean> {
    const held = this.slots.get(claim.userId) ?? new Set<string>();
    if (held.size >= cap) return false;
    held.add(claim.connectionId);
    this.slots.set(claim.userId, held);
    return true;
  }

  async release(claim: SlotClaim): Promise<void> {
    const held = this.slots.get(claim.userId);
    held?.delete(claim.connectionId);
    if (held?.size === 0) this.slots.delete(claim.userId);
  }

  async renew(): Promise<void> {}
}

/**
 * The per-user WebSocket cap of this replica's sockets: takes a slot at the upgrade, renews every slot
 * it holds a few times per lease, and gives each back when its socket closes.
 */
export class ConnectionSlots {
  private readonly held = new Set<SlotClaim>();
  private timer: NodeJS.Timeout | undefined;
  private next = 0;

  constructor(
    private readonly store: SlotStore,
    private readonly opts: { gatewayId: string; leaseMs: number; logger: Logger; onError: () => void },
  ) {}

  get kind(): SlotStore['kind'] {
    return this.store.kind;
  }

  start(): void {
    if (this.timer !== undefined || this.store.kind === 'memory') return;
    this.timer = setInterval(() => {
      this.store.renew([...this.held], this.opts.leaseMs).catch((err: unknown) => {
        this.opts.onError();
        this.opts.logger.warn({ err }, 'could not renew WebSocket slots');
      });
    }, Math.max(250, Math.floor(this.opts.leaseMs / 3)));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A slot for `userId`, or undefined when the user already holds `cap`; throws when the store fails. */
  async acquire(userId: string, cap: number): Promise<SlotClaim | undefined> {
    const claim: SlotClaim = { userId, connectionId: `${this.opts.gatewayId}:${++this.next}` };
    if (!(await this.store.acquire(claim, cap, this.opts.leaseMs))) return undefined;
    this.held.add(claim);
    return claim;
  }

  release(claim: SlotClaim): void {
    if (!this.held.delete(claim)) return;
    this.store.release(claim).catch((err: unknown) => {
      // Its lease runs out by itself.
      this.opts.onError();
      this.opts.logger.warn({ err }, 'could not release a WebSocket slot');
    });
  }
}
