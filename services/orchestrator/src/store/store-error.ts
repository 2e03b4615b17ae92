/** What a store was doing when it failed; the first four are also the `operation` label of the metrics. */
export type StoreOperation = 'append' | 'history' | 'sessions' | 'usage' | 'health' | 'connect';

/**
 * A store operation failed (backend unreachable, write rejected, store closed). Deliberately not an
 * `AppError`: it is for the logs, and the chat pipeline never turns it into a client error. The backend's
 * own error is the `cause`.
 */
export class StoreError extends Error {
  override readonly name = 'StoreError';

  constructor(
    readonly operation: StoreOperation,
    readonly collection: string,
    cause: unknown,
  ) {
    super(`conversation store: ${operation} on ${collection} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}
