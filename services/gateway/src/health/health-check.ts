import type { Bus, BusState, Redis } from '@actionedx/shared';
import { AppError } from '@actionedx/shared';
import type { OrchestratorAdmin } from '../admin/orchestrator-admin.js';
import type { GatewayMetrics } from '../metrics.js';

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface HealthReport {
  status: HealthStatus;
  service: 'gateway';
  version: string;
  gateway_id: string;
  uptime_s: number;
  dependencies: {
    nats: { status: BusState; kind: Bus['kind'] };
    redis: { status: 'connected' | 'disconnected' | 'not_configured'; latency_ms: number | null };
    orchestrators: {
      status: 'reachable' | 'unreachable';
      /** Whether a worker answered a ping (workers answer in a queue group: one speaks for the pool). */
      workers_reachable: boolean;
      latency_ms: number | null;
      worker_id?: string;
      in_flight?: number;
      error?: string;
    };
  };
}

export interface Readiness {
  ready: boolean;
  reason?: 'shutting_down' | 'bus_not_connected';
}

export interface HealthCheckDeps {
  bus: Bus;
  redis?: Redis | undefined;
  admin: OrchestratorAdmin;
  metrics: Pick<GatewayMetrics, 'health'>;
  version: string;
  gatewayId: string;
}

/** What /api/health, /healthz and /readyz report. */
export class HealthCheck {
  private readonly startedAt = Date.now();
  private draining = false;
  private refresher: NodeJS.Timeout | undefined;

  constructor(private readonly deps: HealthCheckDeps) {}

  /** Keeps `service_health` current between health requests, so alerts see a dead pool without a caller. */
  startRefreshing(intervalMs: number): void {
    this.refresher ??= setInterval(() => void this.report().catch(() => {}), intervalMs);
    this.refresher.unref();
  }

  stopRefreshing(): void {
    clearInterval(this.refresher);
    this.refresher = undefined;
  }

  /** From now on the gateway is not ready (it is shutting down). */
  setDraining(): void {
    this.draining = true;
  }

  readiness(): Readiness {
    if (this.draining) return { ready: false, reason: 'shutting_down' };
    if (this.deps.bus.state() !== 'connected') return { ready: false, reason: 'bus_not_connected' };
    return { ready: true };
  }

  async report(): Promise<HealthReport> {
    const [redis, orchestrators] = await Promise.all([this.redisStatus(), this.orchestratorStatus()]);
    const nats = { status: this.deps.bus.state(), kind: this.deps.bus.kind };
    const status: HealthStatus =
      this.draining || nats.status !== 'connected'
        ? 'unhealthy'
        : orchestrators.status !== 'reachable' || redis.status === 'disconnected'
          ? 'degraded'
          : 'healthy';
    const gauge = this.deps.metrics.health;
    gauge.set({ component: 'gateway' }, status === 'unhealthy' ? 0 : 1);
    gauge.set({ component: 'nats' }, nats.status === 'connected' ? 1 : 0);
    gauge.set({ component: 'orchestrators' }, orchestrators.status === 'reachable' ? 1 : 0);
    if (redis.status !== 'not_configured') gauge.set({ component: 'redis' }, redis.status === 'connected' ? 1 : 0);
    return {
      status,
      service: 'gateway',
      version: this.deps.version,
      gateway_id: this.deps.gatewayId,
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      dependencies: { nats, redis, orchestrators },
    };
  }

  private async redisStatus(): Promise<HealthReport['dependencies']['redis']> {
    const redis = this.deps.redis;
    if (redis === undefined) return { status: 'not_configured', latency_ms: null };
    const started = performance.now();
    try {
      await redis.ping();
      return { status: 'connected', latency_ms: Math.round((performance.now() - started) * 10) / 10 };
    } catch {
      return { status: 'disconnected', latency_ms: null };
    }
  }

  private async orchestratorStatus(): Promise<HealthReport['dependencies']['orchestrators']> {
    if (this.deps.bus.state() === 'closed') {
      return { status: 'unreachable', workers_reachable: false, latency_ms: null, error: 'bus_unavailable' };
    }
    try {
      const { worker, latency_ms } = await this.deps.admin.ping();
      return {
        status: 'reachable',
        workers_reachable: true,
        latency_ms,
        worker_id: worker.worker_id,
        in_flight: worker.in_flight,
      };
    } catch (err) {
      const code = err instanceof AppError ? err.code : 'internal';
      return { status: 'unreachable', workers_reachable: false, latency_ms: null, error: code };
    }
  }
}
