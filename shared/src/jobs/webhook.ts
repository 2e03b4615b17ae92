import { createHmac, timingSafeEqual } from 'node:crypto';
import { AppError } from '../errors.js';

/** Where a job's webhook may point by default: this machine only. Production lists its receivers. */
export const DEFAULT_WEBHOOK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

export const WebhookHeaders = {
  /** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the shared secret>` */
  signature: 'x-actionedx-signature',
  /** The event (`job.completed`, `job.failed`, `job.cancelled`). */
  event: 'x-actionedx-event',
  /** The same on every retry of one delivery: receivers drop duplicates by it. */
  delivery: 'x-actionedx-delivery',
} as const;

/**
 * Which hosts a job's webhook may call. Without such a list, anyone who can submit a job could make the
 * platform send requests to any host its network reaches (SSRF). Entries: `host`, `host:port`, `*.domain`
 * (any subdomain), or `*` (any host: never in production).
 */
export class WebhookPolicy {
  private readonly entries: readonly string[];

  constructor(hosts: readonly string[] = DEFAULT_WEBHOOK_HOSTS) {
    this.entries = hosts.map((h) => h.trim().toLowerCase()).filter((h) => h.length > 0);
  }

  /** `JOB_WEBHOOK_HOSTS` (comma-separated); unset or empty: loopback only. */
  static fromList(csv: string | undefined): WebhookPolicy {
    const hosts = (csv ?? '').split(',').map((h) => h.trim()).filter((h) => h.length > 0);
    return new WebhookPolicy(hosts.length > 0 ? hosts : DEFAULT_WEBHOOK_HOSTS);
  }

  get hosts(): readonly string[] {
    return this.entries;
  }

  /** The URL, parsed, when it may be called; `webhook_not_allowed` otherwise. */
  check(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new AppError('webhook_not_allowed', 'webhook_url is not a URL.', { details: { field: 'webhook_url' } });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new AppError('webhook_not_allowed', 'webhook_url must be an http or https URL.', { details: { field: 'webhook_url' } });
    }
    if (url.username || url.password) {
      throw new AppError('webhook_not_allowed', 'webhook_url may not carry credentials.', { details: { field: 'webhook_url' } });
    }
    if (!this.allows(url)) {
      throw new AppError('webhook_not_allowed', `webhook_url host ${url.hostname} is not in JOB_WEBHOOK_HOSTS.`, {
        details: { field: 'webhook_url' },
      });
    }
    return url;
  }

  private allows(url: URL): boolean {
    const host = url.hostname.toLowerCase();
    const hostPort = url.host.toLowerCase();
    return this.entries.some((e) => {
      if (e === '*') return true;
      if (e.startsWith('*.')) return host.endsWith(e.slice(1)) && host.length > e.length - 1;
      return e === host || e === hostPort;
    });
  }
}

/** The signature header of a webhook body. */
export function signWebhook(secret: string, body: string, timestampSec = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${timestampSec}.${body}`).digest('hex');
  return `t=${timestampSec},v1=${mac}`;
}

/**
 * Whether `header` signs `body` with `secret`, made at most `toleranceSec` ago (a replayed old delivery fails).
 * What a receiver runs; compares in constant time.
 */
export function verifyWebhook(
  secret: string,
  header: string | undefined | null,
  body: string,
  opts: { toleranceSec?: number; nowSec?: number } = {},
): boolean {
  if (!header) return false;
  const parts = Object.fromEntries(header.split(',').map((kv) => kv.trim().split('=', 2) as [string, string]));
  const t = Number(parts.t);
  const v1 = parts.v1;
  if (!Number.isSafeInteger(t) || typeof v1 !== 'string' || !/^[0-9a-f]{64}$/.test(v1)) return false;
  const now = opts.nowSec ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (opts.toleranceSec ?? 300)) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'));
}
