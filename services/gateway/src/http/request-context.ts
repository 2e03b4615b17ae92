import type { NextFunction, Request, RequestHandler, Response } from 'express';
import {
  Headers,
  acceptRequestId,
  childTraceparent,
  runWithContext,
  type Logger,
  type RequestContext,
} from '@actionedx/shared';
import type { GatewayMetrics } from '../metrics.js';

const CONTEXT_KEY = 'requestContext';

/** Routes polled by machines: their access lines go to debug, not info. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics', '/api/metrics', '/api/health']);

/** The request id and trace context of this HTTP request (set by `requestContext`). */
export function contextOf(res: Response): RequestContext {
  return res.locals[CONTEXT_KEY] as RequestContext;
}

/** The route pattern, never the raw URL: metric labels must stay few. */
export function routeOf(req: Request): string {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? req.baseUrl + path : 'unmatched';
}

/** Counts HTTP requests being served, so a shutdown can wait for them. */
export class RequestTracker {
  private active = 0;
  private waiters: Array<() => void> = [];

  get size(): number {
    return this.active;
  }

  begin(): void {
    this.active += 1;
  }

  end(): void {
    this.active -= 1;
    if (this.active > 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/**
 * First middleware: request id (the client's when safe) and trace context on the response and in async
 * context, one access log line and the HTTP metrics when the response ends.
 */
export function requestContext(deps: {
  logger: Logger;
  metrics: Pick<GatewayMetrics, 'http'>;
  tracker: RequestTracker;
}): RequestHandler {
  const { logger, tracker } = deps;
  const { requests, duration } = deps.metrics.http;
  return (req: Request, res: Response, next: NextFunction) => {
    const ctx: RequestContext = {
      request_id: acceptRequestId(req.get(Headers.requestId)),
      traceparent: childTraceparent(req.get(Headers.traceparent)),
    };
    res.locals[CONTEXT_KEY] = ctx;
    res.setHeader(Headers.requestId, ctx.request_id);
    res.setHeader(Headers.traceparent, ctx.traceparent!);
    const started = performance.now();
    tracker.begin();
    res.once('close', () => {
      tracker.end();
      const route = routeOf(req);
      // A response cut off before its end was abandoned by the client (nginx's 499).
      const status = res.writableFinished ? res.statusCode : 499;
      const seconds = (performance.now() - started) / 1000;
      requests.inc({ method: req.method, route, status });
      duration.observe({ method: req.method, route }, seconds);
      const line = {
        request_id: ctx.request_id,
        method: req.method,
        route,
        status,
        duration_ms: Math.round(seconds * 10_000) / 10,
      };
      if (QUIET_ROUTES.has(route)) logger.debug(line, 'http request');
      else logger.info(line, 'http request');
    });
    runWithContext(ctx, next);
  };
}

/** Re-enter the request's async context: body parsing resumes from socket events, outside it. */
export const reenterContext: RequestHandler = (_req, res, next) => runWithContext(contextOf(res), next);
