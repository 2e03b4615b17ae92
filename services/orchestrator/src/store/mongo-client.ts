import { MongoClient } from 'mongodb';

export interface MongoClientOptions {
  /** Shown in the server's logs and `currentOp`. Default `actionedx-orchestrator`. */
  appName?: string;
  /** An operation that finds no server by then fails (also the first connect). Default 2000 ms. */
  serverSelectionTimeoutMs?: number;
  /** A socket silent for this long is closed and its operation fails, so a stalled server cannot hang a call. Default 10 000 ms. */
  socketTimeoutMs?: number;
  /** Connections per server. Default 10. */
  maxPoolSize?: number;
}

/**
 * The house MongoDB client: fails fast when no server answers (a store failure must not hold a worker),
 * acknowledged writes (`w: 1`), retryable writes and reads (the driver's defaults).
 * Throws a `MongoParseError` at once for a malformed URL; does not connect (see `MongoClient.connect`).
 */
export function createMongoClient(url: string, opts: MongoClientOptions = {}): MongoClient {
  const serverSelectionTimeoutMS = opts.serverSelectionTimeoutMs ?? 2000;
  return new MongoClient(url, {
    appName: opts.appName ?? 'actionedx-orchestrator',
    serverSelectionTimeoutMS,
    connectTimeoutMS: serverSelectionTimeoutMS,
    socketTimeoutMS: opts.socketTimeoutMs ?? 10_000,
    maxPoolSize: opts.maxPoolSize ?? 10,
    writeConcern: { w: 1 },
  });
}
