export interface LruLimits {
  /** Most entries held; the least recently used go first. */
  maxEntries: number;
  /** Most bytes held (UTF-8 size of keys and values, an estimate of the memory used). */
  maxBytes: number;
}

interface Item {
  value: string;
  bytes: number;
  expiresAt: number;
}

/**
 * Strings with a time to live, bounded by count and by size, evicting the least recently used.
 * A Map keeps insertion order, so re-inserting on each read keeps the oldest first.
 */
export class LruStore {
  private readonly items = new Map<string, Item>();
  private usedBytes = 0;

  constructor(
    private readonly limits: LruLimits,
    private readonly now: () => number = Date.now,
  ) {}

  get bytes(): number {
    return this.usedBytes;
  }

  /** The live value under `key`, now the most recently used; an expired one is dropped. */
  get(key: string): string | undefined {
    const item = this.items.get(key);
    if (!item) return undefined;
    this.items.delete(key);
    if (item.expiresAt <= this.now()) {
      this.usedBytes -= item.bytes;
      return undefined;
    }
    this.items.set(key, item);
    return item.value;
  }

  /** False, holding nothing, when the value alone is larger than the whole store may be. */
  set(key: string, value: string, ttlMs: number): boolean {
    this.delete(key);
    const bytes = Buffer.byteLength(key) + Buffer.byteLength(value);
    if (bytes > this.limits.maxBytes) return false;
    this.items.set(key, { value, bytes, expiresAt: this.now() + ttlMs });
    this.usedBytes += bytes;
    this.evict();
    return true;
  }

  delete(key: string): boolean {
    const item = this.items.get(key);
    if (!item) return false;
    this.items.delete(key);
    this.usedBytes -= item.bytes;
    return true;
  }

  /** The live keys, oldest first; expired entries are dropped on the way. */
  keys(): string[] {
    const now = this.now();
    const live: string[] = [];
    for (const [key, item] of this.items) {
      if (item.expiresAt <= now) this.delete(key);
      else live.push(key);
    }
    return live;
  }

  private evict(): void {
    for (const key of this.items.keys()) {
      if (this.items.size <= this.limits.maxEntries && this.usedBytes <= this.limits.maxBytes) return;
      this.delete(key);
    }
  }
}
