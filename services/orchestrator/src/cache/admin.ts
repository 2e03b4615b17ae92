import { z } from 'zod';
import {
  CacheInvalidateRequestSchema,
  Headers,
  QueueGroups,
  Subjects,
  decodeJson,
  encodeJson,
  toAppError,
  type AdminReply,
  type Bus,
  type BusMessage,
  type Logger,
} from '@actionedx/shared';
import type { AnswerStore } from './answer-store.js';

/** Stats and health take no parameters; unknown members are ignored so that older workers accept newer callers. */
const EmptyRequestSchema = z.object({});

/**
 * Answers the cache administration subjects (`cache.v1.stats`, `cache.v1.invalidate`, `cache.v1.health`) in
 * the orchestrators' queue group: one replica answers each request, with cluster-wide figures. Returns a
 * function that unsubscribes them.
 */
export function registerCacheAdmin(bus: Bus, cache: AnswerStore, logger: Logger): () => void {
  const routes: Array<[string, (data: Uint8Array) => Promise<unknown>]> = [
    [Subjects.cacheStats, withoutParameters(() => cache.stats())],
    [Subjects.cacheInvalidate, (data) => cache.invalidate(decodeJson(CacheInvalidateRequestSchema, data))],
    [Subjects.cacheHealth, withoutParameters(() => cache.health())],
  ];
  const subscriptions = routes.map(([subject, handle]) =>
    bus.subscribe(subject, (msg) => void answerAdminRequest(bus, msg, handle, logger), { queue: QueueGroups.orchestrators }),
  );
  return () => {
    for (const s of subscriptions) s.unsubscribe();
  };
}

/** Still checks that the request is a JSON object, so a malformed one gets `invalid_message`. */
const withoutParameters =
  (run: () => Promise<unknown>) =>
  (data: Uint8Array): Promise<unknown> => {
    decodeJson(EmptyRequestSchema, data);
    return run();
  };

/** Answers one administrative request with `{ok: true, data}` or `{ok: false, error}` (AdminReply). */
export async function answerAdminRequest(
  bus: Bus,
  msg: BusMessage,
  handle: (data: Uint8Array) => Promise<unknown>,
  logger: Logger,
): Promise<void> {
  // A publish without a reply subject has no one to answer: nothing to do.
  if (msg.reply === undefined) return;
  const requestId = msg.headers[Headers.requestId];
  let reply: AdminReply;
  try {
    reply = { ok: true, data: await handle(msg.data) };
  } catch (err) {
    const e = toAppError(err);
    if (e.code === 'internal') logger.error({ err, subject: msg.subject, request_id: requestId }, 'admin request failed');
    else logger.info({ code: e.code, subject: msg.subject, request_id: requestId }, 'admin request refused');
    reply = { ok: false, error: { code: e.code, message: e.message, retryable: e.retryable } };
  }
  try {
    bus.publish(msg.reply, encodeJson(reply), requestId === undefined ? {} : { headers: { [Headers.requestId]: requestId } });
  } catch (err) {
    // The bus closed while we worked: the caller's timeout tells it.
    logger.debug({ err, subject: msg.subject }, 'admin reply not sent');
  }
}
