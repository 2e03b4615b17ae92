import type { Redis } from '@actionedx/shared';
import { ApiKeyRecordSchema, type ApiKeyRecord } from './api-key.js';

/** Where API keys live: Redis with REDIS_URL (every gateway sees every key), else this process. */
export interface ApiKeyStore {
  readonly kind: 'redis' | 'memory';
  get(id: string): Promise<ApiKeyRecord | undefined>;
  /** Create or replace. */
  put(record: ApiKeyRecord): Promise<void>;
  list(): Promise<ApiKeyRecord[]>;
}

export class MemoryApiKeyStore implements ApiKeyStore {
  readonly kind = 'memory';
  private readonly records = new Map<string, ApiKeyRecord>();

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    const r = this.records.get(id);
    return r === undefined ? undefined : { ...r };
  }

  async put(record: ApiKeyRecord): Promise<void> {
    this.records.set(record.id, { ...record });
  }

  async list(): Promise<ApiKeyRecord[]> {
    return [...this.records.values()].map((r) => ({ ...r }));
  }
}

const recordKey = (id: string): string => `api_key:${id}`;
const INDEX_KEY = 'api_keys';

/**
 * `api_key:<id>` holds the record as JSON (no TTL: a revoked key stays, marked, for the audit trail) and
 * the set `api_keys` their ids. Errors propagate: a key that cannot be checked is never accepted.
 */
export class RedisApiKeyStore implements ApiKeyStore {
  readonly kind = 'redis';

  constructor(private readonly redis: Redis) {}

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    const raw = await this.redis.get(recordKey(id));
    if (raw === null) return undefined;
    const parsed = ApiKeyRecordSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  }

  async put(record: ApiKeyRecord): Promise<void> {
    await this.redis.multi().set(recordKey(record.id), JSON.stringify(record)).sadd(INDEX_KEY, record.id).exec();
  }

  async list(): Promise<ApiKeyRecord[]> {
    const ids = await this.redis.smembers(INDEX_KEY);
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map(recordKey));
    const out: ApiKeyRecord[] = [];
    for (const raw of raws) {
      if (raw === null) continue;
      const parsed = ApiKeyRecordSchema.safeParse(JSON.parse(raw));
      if (parsed.success) out.push(parsed.data);
    }
    return out;
  }
}
