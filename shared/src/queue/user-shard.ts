import { createHash } from 'node:crypto';

/**
 * The queue subject token of a user: 64 bits of SHA-256 of the id, so subjects never carry a user id and the
 * per-subject limit of the queue is, in practice, a per-user limit.
 */
export function userShard(userId: string): string {
  return createHash('sha256').update(userId).digest('hex').slice(0, 16);
}
