import { AsyncLocalStorage } from 'node:async_hooks';
import { randomFillSync, randomUUID } from 'node:crypto';
import { SUBJECT_TOKEN } from './subjects.js';

/** What follows one request through every service: set at the edge, carried in bus headers. */
export interface RequestContext {
  request_id: string;
  /** W3C trace context, `00-<trace id>-<span id>-<flags>`. */
  traceparent?: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

export const runWithContext = <T>(ctx: RequestContext, fn: () => T): T => storage.run(ctx, fn);
export const currentContext = (): RequestContext | undefined => storage.getStore();

export const newRequestId = (): string => randomUUID();

/** A client-supplied id is kept when it is safe to put in a subject and a log line. */
export const acceptRequestId = (candidate: string | undefined): string =>
  candidate !== undefined && SUBJECT_TOKEN.test(candidate) ? candidate : newRequestId();

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Random bytes drawn in blocks: ids are made on every request, and one call per id costs more than the id. */
const pool = Buffer.allocUnsafe(4096);
let poolAt = pool.length;
function randomHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  poolAt += bytes;
  return pool.toString('hex', poolAt - bytes, poolAt);
}

/** Continue the caller's trace with a new span id, or start a new trace. */
export function childTraceparent(parent: string | undefined): string {
  const span = randomHex(8);
  const m = parent === undefined ? null : TRACEPARENT.exec(parent);
  if (m && !/^0+$/.test(m[1]!)) return `00-${m[1]}-${span}-${m[3]}`;
  return `00-${randomHex(16)}-${span}-01`;
}

/** Header names used on HTTP and on the bus. */
export const Headers = { requestId: 'x-request-id', traceparent: 'traceparent' } as const;
