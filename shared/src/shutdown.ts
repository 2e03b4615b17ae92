import closeWithGrace from 'close-with-grace';
import type { Logger } from './logger.js';

export interface GracefulShutdownOptions {
  logger: Logger;
  /** How long `close` may take before the process exits anyway (exit code 1). */
  graceMs: number;
  /** Stops the service: refuse new work, finish what runs, close connections. */
  close: (reason: { signal?: string; err?: Error }) => Promise<void>;
}

export interface GracefulShutdown {
  /** True from the first signal or fatal error on: readiness reports not ready. */
  readonly closing: boolean;
}

/** Time beyond the service's own grace period for closing connections and flushing logs. */
const EXIT_MARGIN_MS = 2_000;

/**
 * The one shutdown shape of every service (close-with-grace): SIGTERM or SIGINT closes gracefully and exits 0;
 * an uncaught exception or unhandled rejection is logged as fatal, closes the same way and exits 1; a second
 * signal, or a close that outlives its grace period, exits at once with 1.
 */
export function onShutdown(opts: GracefulShutdownOptions): GracefulShutdown {
  const { logger } = opts;
  let closing = false;
  closeWithGrace(
    {
      delay: opts.graceMs + EXIT_MARGIN_MS,
      logger: { error: (msg: unknown) => logger.error({ detail: msg }, 'shutdown') },
      onSecondSignal: (signal) => logger.warn({ signal }, 'second signal: exiting now'),
      onSecondError: (err) => logger.fatal({ err }, 'error while shutting down: exiting now'),
      onTimeout: (delay) => logger.error({ delay_ms: delay }, 'shutdown took too long: exiting now'),
    },
    async ({ signal, err }) => {
      closing = true;
      if (err) logger.fatal({ err }, 'fatal error: shutting down');
      else logger.info({ signal, grace_ms: opts.graceMs }, 'shutting down');
      await opts.close({ ...(signal ? { signal } : {}), ...(err ? { err } : {}) });
      logger.info('stopped');
      logger.flush?.();
    },
  );
  return {
    get closing() {
      return closing;
    },
  };
}
