import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './processes.js';

/** The seed's "WebSocket Client Example" (phase1-summary.md), byte for byte; one copy for every test. */
export const SEED_CLIENT_PATH = join(ROOT, 'testkit', 'seed-client.js');
export const SEED_CLIENT_SOURCE = readFileSync(SEED_CLIENT_PATH, 'utf8');
/** The only thing a test changes in it: where it connects. */
export const SEED_CLIENT_HOST = 'localhost:8001';

/** The seed's socket URL's query, where a token joins it. */
const SEED_CLIENT_QUERY = '?user_id=user-456';

/**
 * The seed client's source pointed at `host` (`127.0.0.1:PORT`), otherwise unchanged; with `accessToken`
 * (authentication on), the one other change a browser client needs: `&access_token=` on the socket's URL.
 */
export const seedClientFor = (host: string, accessToken?: string): string => {
  const source = SEED_CLIENT_SOURCE.replace(SEED_CLIENT_HOST, host);
  return accessToken === undefined
    ? source
    : source.replace(SEED_CLIENT_QUERY, `${SEED_CLIENT_QUERY}&access_token=${encodeURIComponent(accessToken)}`);
};

/** The user the seed client speaks as (its URL and its message name `user-456`): a token must be theirs. */
export const SEED_CLIENT_USER = 'user-456';

export interface SeedClientRun {
  /** Every `console.log` call of the client, with its arguments. */
  logs: unknown[][];
  /** Every `console.error` call. */
  errors: unknown[][];
  /** Resolves once the client logged its suggestions (the end of a turn). */
  finished: Promise<void>;
  close(): void;
}

/**
 * Runs the unchanged seed client in Node against `host`, with `WebSocketImpl` as the browser's WebSocket
 * (Node 20 has none; `ws` stands in) and a console that records instead of printing.
 */
export function runSeedClient(
  host: string,
  WebSocketImpl: new (url: string) => { close(): void },
  timeoutMs = 15_000,
  opts: { accessToken?: string } = {},
): SeedClientRun {
  const logs: unknown[][] = [];
  const errors: unknown[][] = [];
  let sockets: Array<{ close(): void }> = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve, reject) => {
    done = resolve;
    setTimeout(() => reject(new Error(`the seed client did not finish; logged ${JSON.stringify(logs)} ${JSON.stringify(errors)}`)), timeoutMs).unref();
  });
  const console = {
    log: (...args: unknown[]) => {
      logs.push(args);
      if (args[0] === 'Suggestions:') done();
    },
    error: (...args: unknown[]) => void errors.push(args),
  };
  const Tracked = class extends (WebSocketImpl) {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  };
  // The seed's client runs verbatim, as a browser would run it: evaluating its text is the point.
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  new Function('WebSocket', 'console', seedClientFor(host, opts.accessToken))(Tracked, console);
  return {
    logs,
    errors,
    finished,
    close: () => {
      for (const s of sockets) s.close();
      sockets = [];
    },
  };
}
