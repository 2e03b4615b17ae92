import { destination, pino, type Logger, type LoggerOptions } from 'pino';
import { createRequire } from 'node:module';
import { currentContext } from './context.js';

export type { Logger } from 'pino';

export interface LoggerConfig {
  service: string;
  version?: string;
  level?: string;
  /** Human-readable output; default: on for a terminal outside production, when pino-pretty is installed. */
  pretty?: boolean;
}

const REDACT = [
  'apiKey',
  'api_key',
  'password',
  'token',
  'authorization',
  '*.apiKey',
  '*.api_key',
  '*.password',
  '*.token',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/** JSON logs with service, version and the current request id on every line; secrets redacted. */
export function createLogger(cfg: LoggerConfig): Logger {
  const pretty =
    (cfg.pretty ?? (process.stdout.isTTY === true && process.env.NODE_ENV !== 'production')) && prettyAvailable();
  const opts: LoggerOptions = {
    level: cfg.level ?? 'info',
    base: { service: cfg.service, version: cfg.version ?? '0.1.0', pid: process.pid },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const ctx = currentContext();
      return ctx ? { request_id: ctx.request_id, ...(ctx.traceparent ? { traceparent: ctx.traceparent } : {}) } : {};
    },
  };
  if (pretty) return pino({ ...opts, transport: { target: 'pino-pretty', options: { colorize: true } } });
  // Asynchronous writes: a log line must not cost a blocking write(2) on the request path.
  return pino(opts, destination({ dest: 1, sync: false }));
}
