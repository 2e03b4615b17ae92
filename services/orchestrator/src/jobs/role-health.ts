import type { Bus } from '@actionedx/shared';
import type { Orchestrator } from '../orchestrator.js';
import type { JobWorkers } from './job-workers.js';

/** Readiness and health of a process by its roles: chat (the NATS chat worker), jobs (BullMQ workers), or both. */
export function roleHealth(deps: { chat: boolean; orchestrator: Orchestrator; jobs: JobWorkers | undefined; bus: Bus }) {
  const { chat, orchestrator, jobs, bus } = deps;
  const jobsReady = () => jobs === undefined || (jobs.ready() && bus.state() === 'connected');
  const ready = () => (!chat || orchestrator.ready()) && jobsReady();
  async function health(): Promise<Record<string, unknown>> {
    const h = await orchestrator.health();
    const roles = [...(chat ? ['chat'] : []), ...(jobs ? ['jobs'] : [])];
    if (!jobs) return { ...h, roles };
    const status = !ready() ? 'unhealthy' : chat ? h.status : h.status === 'unhealthy' ? 'healthy' : h.status;
    return { ...h, status, roles, jobs: { ready: jobsReady(), running: jobs.inFlight } };
  }
  return { ready, health };
}

/** A URL without its password, for a log line. */
export function redactedUrl(url: string | undefined): string | undefined {
  if (!url) return url;
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}
