import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { destination, pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { currentContext } from './context.js';

export type { Logger } from 'pino';

export interface LoggerConfig {
  service: string;
  /**
   * The service's own version, `readPackageVersion(import.meta.url)` from its main module; on every line.
   * Optional only until every main passes it; without it lines say `unknown` rather than a made-up number.
   */
  version: string;
  level?: string;
  /** Human-readable output; default: on for a terminal outside production, when pino-pretty is installed. */
  pretty?: boolean;
  /** Where lines go instead of stdout (tests). */
  destination?: DestinationStream;
}

/**
 * Keys whose values never reach a log line, at any depth, compared without case: credentials in headers,
 * bodies, configs and errors.
 */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'apikey',
  'api_key',
  'password',
  'passwd',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'secret',
  'client_secret',
  'private_key',
]);
export const REDACTED = '[redacted]';
/** Deeper than this a logged object is left as it is: log lines are not that deep, and cycles end here. */
const REDACT_MAX_DEPTH = 10;

/** A copy that keeps what JSON and pino's error serializer read: own properties and the prototype. */
function copyOf(value: object): Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype) return { ...value };
  return Object.create(proto as object | null, Object.getOwnPropertyDescriptors(value)) as Record<string, unknown>;
}

/**
 * `value` with every secret (SECRET_KEYS) censored at any depth. Objects without a secret are returned as
 * they are, and the caller's objects are never changed: only the path to a secret is copied.
 *
 * Why not pino's `redact`: it has no `**`, and paths generated for several depths (`*.*.authorization`, ...)
 * cost 25-600 µs per line in pino 9 (measured), against a microsecond or two for this walk.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object' || depth > REDACT_MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const censored = redactSecrets(item, depth + 1);
      if (censored !== item) (out ??= value.slice())[i] = censored;
    }
    return (out ?? value) as T;
  }
  // Their JSON is theirs to decide (Date, Buffer), or empty (Map, Set).
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function' || value instanceof Map || value instanceof Set) {
    return value;
  }
  let out: Record<string, unknown> | undefined;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const item: unknown = (value as Record<string, unknown>)[key];
    const censored = SECRET_KEYS.has(key.toLowerCase()) && item !== undefined ? REDACTED : redactSecrets(item, depth + 1);
    if (censored !== item) (out ??= copyOf(value))[key] = censored;
  }
  return (out ?? value) as T;
}

/**
 * The `version` of the package.json nearest above `moduleUrl` (pass `import.meta.url`: the same file
 * finds its package from src/ under vitest and from dist/ when built); `unknown` when there is none.
 */
export function readPackageVersion(moduleUrl: string | URL): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
        return typeof pkg.version === 'string' ? pkg.version : 'unknown';
      } catch {
        return 'unknown';
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/** JSON logs with service, version and the current request id on every line; secrets censored at any depth. */
export function createLogger(cfg: LoggerConfig): Logger {
  const pretty =
    cfg.destination === undefined &&
    (cfg.pretty ?? (process.stdout.isTTY === true && process.env.NODE_ENV !== 'production')) &&
    prettyAvailable();
  const opts: LoggerOptions = {
    level: cfg.level ?? 'info',
    base: { service: cfg.service, version: cfg.version, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      bindings: (bindings) => redactSecrets(bindings),
      log: (object) => redactSecrets(object),
    },
    mixin() {
      const ctx = currentContext();
      return ctx ? { request_id: ctx.request_id, ...(ctx.traceparent ? { traceparent: ctx.traceparent } : {}) } : {};
    },
  };
  let logger: Logger;
  if (cfg.destination !== undefined) logger = pino(opts, cfg.destination);
  else if (pretty) logger = pino({ ...opts, transport: { target: 'pino-pretty', options: { colorize: true } } });
  // Asynchronous writes: a log line must not cost a blocking write(2) on the request path.
  else logger = pino(opts, destination({ dest: 1, sync: false }));
  return censorChildBindings(logger);
}

/**
 * pino gives children no bindings formatter, so their bindings are censored on the way in. Children are
 * made with `Object.create(parent)`, so this one override reaches grandchildren too.
 */
function censorChildBindings(logger: Logger): Logger {
  // pino's own method, re-bound below with `apply`: taken off the instance on purpose.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const makeChild = logger.child;
  Object.defineProperty(logger, 'child', {
    value: function child(this: Logger, ...[bindings, options]: Parameters<Logger['child']>) {
      return makeChild.call(this, redactSecrets(bindings), options);
    },
    writable: true,
    configurable: true,
  });
  return logger;
}
