import { LRUCache } from 'lru-cache';
import { AppError } from '@actionedx/shared';
import { parseOrThrow } from '../chat/request-validation.js';
import {
  API_KEY_ID,
  ApiKeyCreateSchema,
  mintApiKey,
  parseApiKey,
  secretMatches,
  sha256Hex,
  toApiKeyView,
  type ApiKeyRecord,
  type ApiKeyView,
} from './api-key.js';
import type { ApiKeyStore } from './api-key-store.js';
import { AuthFailure } from './jwt-verifier.js';

const CACHE_MAX = 10_000;

/**
 * API keys: created and revoked by an administrator, resolved on every call that presents one. Lookups are
 * cached for `cacheMs` (a revocation is immediate on the replica that made it, and reaches the others
 * within that time); the store failing is `auth_unavailable`, never a key accepted unchecked.
 */
export class ApiKeys {
  private readonly cache: LRUCache<string, ApiKeyRecord> | undefined;

  constructor(
    private readonly store: ApiKeyStore,
    opts: { cacheMs: number },
  ) {
    this.cache = opts.cacheMs > 0 ? new LRUCache({ max: CACHE_MAX, ttl: opts.cacheMs }) : undefined;
  }

  get kind(): ApiKeyStore['kind'] {
    return this.store.kind;
  }

  /** A new key; its secret is in `key`, returned this once. */
  async create(input: unknown): Promise<ApiKeyView & { key: string }> {
    const spec = parseOrThrow(ApiKeyCreateSchema, input);
    const { id, secret, key } = mintApiKey();
    const record: ApiKeyRecord = {
      id,
      user_id: spec.user_id,
      role: spec.role,
      ...(spec.name === undefined ? {} : { name: spec.name }),
      ...(spec.limits === undefined ? {} : { limits: spec.limits }),
      created_at: new Date().toISOString(),
      revoked_at: null,
      secret_sha256: sha256Hex(secret),
    };
    await this.guard(this.store.put(record));
    return { ...toApiKeyView(record), key };
  }

  async list(filter: { user_id?: string | undefined } = {}): Promise<ApiKeyView[]> {
    const records = await this.guard(this.store.list());
    return records
      .filter((r) => filter.user_id === undefined || r.user_id === filter.user_id)
      .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id))
      .map(toApiKeyView);
  }

  /** Revoke by id; undefined when there is no such key. Revoking twice keeps the first time. */
  async revoke(id: string): Promise<ApiKeyView | undefined> {
    if (!API_KEY_ID.test(id)) return undefined;
    const record = await this.guard(this.store.get(id));
    if (record === undefined) return undefined;
    this.cache?.delete(id);
    if (record.revoked_at === null) {
      record.revoked_at = new Date().toISOString();
      await this.guard(this.store.put(record));
    }
    return toApiKeyView(record);
  }

  /** The record a presented key stands for; throws `AuthFailure` for an unknown, wrong or revoked key. */
  async resolve(key: string): Promise<ApiKeyRecord> {
    const parts = parseApiKey(key);
    if (parts === undefined) throw new AuthFailure('malformed');
    let record = this.cache?.get(parts.id);
    if (record === undefined) {
      try {
        record = await this.store.get(parts.id);
      } catch (err) {
        throw new AuthFailure('unavailable', { cause: err });
      }
      if (record === undefined) throw new AuthFailure('bad_key');
      this.cache?.set(parts.id, record);
    }
    if (!secretMatches(parts.secret, record.secret_sha256)) throw new AuthFailure('bad_key');
    if (record.revoked_at !== null) throw new AuthFailure('revoked');
    return record;
  }

  private async guard<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      throw new AppError('auth_unavailable', 'The API key store is unavailable.', { cause: err });
    }
  }
}
