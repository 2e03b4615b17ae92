import { jobPaths, type JobError, type JobResult } from '../contracts/jobs.js';
import type { Usage } from '../contracts/chat.js';
import type { JobEvents } from './job-events.js';
import type { WebhookEvent, WebhookQueue } from './job-queue.js';
import type { JobRecord, JobStore } from './job-store.js';

export const CANCELLED_ERROR: JobError = { code: 'cancelled', message: 'The job was cancelled.', retryable: false };

/**
 * The one way a job ends, wherever that is decided (a worker, a cancel of a queued job at the gateway): the
 * record takes its terminal state once (a second ending changes nothing and says so), then the final event,
 * then the webhook delivery is queued.
 */
export class JobEndings {
  constructor(
    private readonly deps: { store: JobStore; events: JobEvents; webhooks?: WebhookQueue | undefined },
  ) {}

  async completed(rec: JobRecord, result: JobResult, usage: Usage, costUsd: number): Promise<boolean> {
    const ended = await this.deps.store.update(rec.id, {
      state: 'completed',
      percent: 100,
      message: 'completed',
      finished_at: Date.now(),
      steps_done: rec.steps_total,
      result,
      usage,
      cost_usd: costUsd,
    });
    if (!ended) return false;
    await this.deps.events.emit(rec.owner, {
      type: 'job_done',
      job_id: rec.id,
      kind: rec.kind,
      summary: result.summary,
      result_url: jobPaths(rec.id).self,
      usage,
      cost_usd: costUsd,
    });
    await this.queueWebhook(rec, 'job.completed');
    return true;
  }

  /** A failure, or (`state` cancelled) the owner's cancel. */
  async failed(rec: JobRecord, state: 'failed' | 'cancelled', error: JobError, spent?: { usage: Usage; cost_usd: number }): Promise<boolean> {
    const ended = await this.deps.store.update(rec.id, {
      state,
      message: state === 'cancelled' ? 'cancelled' : `failed: ${error.message}`,
      finished_at: Date.now(),
      error,
      ...(spent ? { usage: spent.usage, cost_usd: spent.cost_usd } : {}),
    });
    if (!ended) return false;
    await this.deps.events.emit(rec.owner, { type: 'job_failed', job_id: rec.id, kind: rec.kind, state, error });
    await this.queueWebhook(rec, state === 'cancelled' ? 'job.cancelled' : 'job.failed');
    return true;
  }

  private async queueWebhook(rec: JobRecord, event: WebhookEvent): Promise<void> {
    if (rec.webhook_url && this.deps.webhooks) await this.deps.webhooks.add({ job_id: rec.id, event });
  }
}

