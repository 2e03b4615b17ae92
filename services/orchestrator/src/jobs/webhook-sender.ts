import { UnrecoverableError } from 'bullmq';
import {
  AppError,
  signWebhook,
  toJobView,
  WebhookHeaders,
  type JobMetrics,
  type JobStore,
  type Logger,
  type WebhookDeliveryData,
  type WebhookPolicy,
} from '@actionedx/shared';

export interface WebhookSenderDeps {
  store: JobStore;
  policy: WebhookPolicy;
  /** HMAC-SHA256 key; without one, nothing is sent (a receiver could not tell our calls from anyone's). */
  secret: string | undefined;
  timeoutMs: number;
  metrics: JobMetrics;
  logger: Logger;
}

/** One delivery of a finished job's webhook: the job as the API shows it, signed, POSTed; no redirects followed. */
export class WebhookSender {
  private warnedNoSecret = false;

  constructor(private readonly deps: WebhookSenderDeps) {}

  /** Resolves when the receiver answered 2xx; throws to have the queue retry (or, when final, gives up). */
  async deliver(data: WebhookDeliveryData, attempt: number, final: boolean): Promise<void> {
    const { store, metrics, logger } = this.deps;
    const rec = await store.get(data.job_id);
    if (!rec?.webhook_url) return;
    const refuse = async (why: string): Promise<never> => {
      await store.setWebhook(rec.id, 'failed', attempt);
      metrics.webhooks.inc({ outcome: 'failed' });
      throw new UnrecoverableError(why);
    };
    if (!this.deps.secret) {
      if (!this.warnedNoSecret) logger.error('JOB_WEBHOOK_SECRET is not set: job webhooks are not sent');
      this.warnedNoSecret = true;
      return refuse('JOB_WEBHOOK_SECRET is not set');
    }
    try {
      // Checked again here: the allowlist may have shrunk since the job was submitted.
      this.deps.policy.check(rec.webhook_url);
    } catch (err) {
      return refuse(err instanceof AppError ? err.message : 'webhook_url not allowed');
    }
    const deliveryId = `${rec.id}.${data.event}`;
    const body = JSON.stringify({ id: deliveryId, event: data.event, created_at: new Date().toISOString(), job: toJobView(rec) });
    let status: number | undefined;
    try {
      const res = await fetch(rec.webhook_url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'ActionEDx-Webhooks/1',
          [WebhookHeaders.signature]: signWebhook(this.deps.secret, body),
          [WebhookHeaders.event]: data.event,
          [WebhookHeaders.delivery]: deliveryId,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.deps.timeoutMs),
      });
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
    } catch (err) {
      logger.debug({ err, job_id: rec.id }, 'webhook delivery did not reach the receiver');
    }
    if (status !== undefined && status >= 200 && status < 300) {
      await store.setWebhook(rec.id, 'delivered', attempt);
      metrics.webhooks.inc({ outcome: 'delivered' });
      logger.info({ job_id: rec.id, event: data.event, attempt }, 'webhook delivered');
      return;
    }
    await store.setWebhook(rec.id, final ? 'failed' : 'pending', attempt);
    metrics.webhooks.inc({ outcome: final ? 'failed' : 'retry' });
    logger.warn({ job_id: rec.id, status: status ?? 'no answer', attempt, final }, 'webhook delivery failed');
    throw new Error(`webhook receiver answered ${status ?? 'nothing'}`);
  }
}
