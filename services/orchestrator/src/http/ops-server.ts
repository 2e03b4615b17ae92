import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface OpsServerDeps {
  registry: Registry;
  /** Readiness: taking jobs and connected to the bus. */
  ready: () => boolean;
  /** The body of `/api/health`. */
  health: () => Promise<Record<string, unknown>>;
}

/** The orchestrator's own HTTP port: liveness, readiness, health and `/metrics`. */
export function createOpsServer(deps: OpsServerDeps): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: { code: 'method_not_allowed' } });
    switch (path) {
      case '/healthz':
        return json(200, { status: 'ok' });
      case '/readyz':
        return deps.ready() ? json(200, { status: 'ready' }) : json(503, { status: 'not_ready' });
      case '/health':
      case '/api/health':
        return void deps.health().then(
          (h) => json(h.status === 'unhealthy' ? 503 : 200, h),
          () => json(500, { status: 'unhealthy' }),
        );
      case '/metrics':
        return void deps.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': deps.registry.contentType }).end(text),
          () => json(500, { error: { code: 'internal' } }),
        );
      default:
        return json(404, { error: { code: 'not_found', message: 'Not found.' } });
    }
  });
}
