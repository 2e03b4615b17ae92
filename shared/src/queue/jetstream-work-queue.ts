import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type Consumer,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
} from '@nats-io/jetstream';
import { headers as natsHeaders, nanos, type NatsConnection } from '@nats-io/nats-core';
import type { BusHeaders } from '../bus/bus.js';
import type { Logger } from '../logger.js';
import { Subjects, WorkQueueNames } from '../subjects.js';
import {
  QueueFullError,
  QueueUnavailableError,
  type QueuedMessage,
  type QueueStats,
  type Enqueued,
  type WorkQueue,
  type WorkQueueLimits,
} from './work-queue.js';
import { ensureStream } from './ensure-stream.js';

/** JetStream's "maximum messages (per subject) exceeded": a stream with `discard: new` refused a message. */
const MAX_MESSAGES_EXCEEDED = 10077;
const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;
/** A consumer of that name exists with another configuration: update instead. */
const CONSUMER_EXISTS = 10148;
const CONSUMER_NAME_EXISTS = 10013;

/** A publish waits this long for the stream's acknowledgement (a leader election in a cluster takes seconds). */
const PUBLISH_TIMEOUT_MS = 5_000;
/** How long a repeated publish of the same job (same message id) is recognised. */
const DUPLICATE_WINDOW_MS = 60_000;
/** Pull requests waiting at once on the consumer: every free slot of every worker holds one. */
const MAX_WAITING_PULLS = 4_096;

export interface JetStreamWorkQueueOptions {
  limits: WorkQueueLimits;
  /** Memory is faster; file survives a restart of a single server. Replicas protect either in a cluster. */
  storage: 'memory' | 'file';
  logger: Logger;
  /**
   * Create and update the stream and consumer (the orchestrators do). Off for a publisher only (the gateway's
   * fallback): it never makes a queue with its own idea of the bounds.
   */
  manage?: boolean;
}

function toNatsHeaders(h: BusHeaders | undefined) {
  if (!h) return undefined;
  const keys = Object.keys(h);
  if (keys.length === 0) return undefined;
  const out = natsHeaders();
  for (const k of keys) out.set(k, h[k]!);
  return out;
}

/**
 * The work queue on JetStream: a work-queue stream (`CHAT_QUEUE`, subjects `chat.v1.queue.<user shard>`) bounded
 * by `max_msgs` and `max_msgs_per_subject` with `discard: new` (a full queue refuses at once), and one durable
 * pull consumer shared by every orchestrator, each free slot pulling one job (`max_ack_pending` bounds the jobs
 * out; `ack_wait` with `working()` and `max_deliver` hand a dead worker's jobs to the others).
 */
export class JetStreamWorkQueue implements WorkQueue {
  readonly kind = 'jetstream';
  readonly limits: WorkQueueLimits;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  private consumer: Consumer | undefined;
  private ensuring: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly connection: Promise<NatsConnection>,
    private readonly opts: JetStreamWorkQueueOptions,
  ) {
    this.limits = opts.limits;
  }

  /** Stream and consumer created or brought to this configuration; again after the server lost them. */
  ready(): Promise<void> {
    if (this.opts.manage === false) return this.manager().then((jsm) => jsm.streams.info(WorkQueueNames.stream).then(() => undefined));
    this.ensuring ??= this.ensure().finally(() => (this.ensuring = undefined));
    return this.ensuring;
  }

  async enqueue(shard: string, data: Uint8Array, opts: { msgId: string; headers?: BusHeaders }): Promise<Enqueued> {
    const js = await this.client();
    const h = toNatsHeaders(opts.headers);
    const publish = () => js.publish(Subjects.chatQueue(shard), data, { msgID: opts.msgId, timeout: PUBLISH_TIMEOUT_MS, ...(h ? { headers: h } : {}) });
    try {
      return { duplicate: (await publish()).duplicate };
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === MAX_MESSAGES_EXCEEDED) {
        throw new QueueFullError(/per subject/i.test(err.message) ? 'user_share' : 'queue_full');
      }
      // The stream is gone (a single server restarted without its store): make it again and publish once more.
      if (isMissing(err) && this.opts.manage !== false) {
        await this.ready();
        try {
          return { duplicate: (await publish()).duplicate };
        } catch (again) {
          if (again instanceof JetStreamApiError && again.code === MAX_MESSAGES_EXCEEDED) {
            throw new QueueFullError(/per subject/i.test(again.message) ? 'user_share' : 'queue_full');
          }
          throw new QueueUnavailableError('the work queue did not take the job', { cause: again });
        }
      }
      throw new QueueUnavailableError('the work queue did not take the job', { cause: err });
    }
  }

  async pull(signal: AbortSignal, expiresMs = 30_000): Promise<QueuedMessage | null> {
    if (signal.aborted) return null;
    let consumer: Consumer;
    try {
      consumer = await this.pullConsumer();
    } catch (err) {
      throw new QueueUnavailableError('the work queue cannot be read', { cause: err });
    }
    if (signal.aborted) return null;
    let iter;
    try {
      iter = await consumer.fetch({ max_messages: 1, expires: Math.max(1_000, expiresMs) });
    } catch (err) {
      if (isMissing(err)) this.consumer = undefined;
      throw new QueueUnavailableError('the work queue cannot be read', { cause: err });
    }
    const onAbort = () => iter.stop();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const m of iter) {
        // Taken after the slot stopped (a drain): another worker gets it at once.
        if (signal.aborted) {
          m.nak();
          return null;
        }
        return wrap(m);
      }
      return null;
    } catch (err) {
      if (signal.aborted) return null;
      if (isMissing(err)) this.consumer = undefined;
      throw new QueueUnavailableError('the work queue cannot be read', { cause: err });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async stats(): Promise<QueueStats | undefined> {
    try {
      const jsm = await this.manager();
      const info = await jsm.consumers.info(WorkQueueNames.stream, WorkQueueNames.consumer);
      return { jobs: info.num_pending + info.num_ack_pending, waiting: info.num_pending, running: info.num_ack_pending };
    } catch {
      return undefined;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private async client(): Promise<JetStreamClient> {
    if (this.closed) throw new QueueUnavailableError('the queue is closed');
    this.js ??= jetstream(await this.connection, { timeout: PUBLISH_TIMEOUT_MS });
    return this.js;
  }

  private async manager(): Promise<JetStreamManager> {
    this.jsm ??= await jetstreamManager(await this.connection, { timeout: PUBLISH_TIMEOUT_MS });
    return this.jsm;
  }

  private async pullConsumer(): Promise<Consumer> {
    if (this.consumer) return this.consumer;
    const js = await this.client();
    try {
      this.consumer = await js.consumers.get(WorkQueueNames.stream, WorkQueueNames.consumer);
    } catch (err) {
      if (!isMissing(err)) throw err;
      await this.ready();
      this.consumer = await js.consumers.get(WorkQueueNames.stream, WorkQueueNames.consumer);
    }
    return this.consumer;
  }

  private streamConfig(): Partial<StreamConfig> & { name: string } {
    const { limits } = this.opts;
    return {
      name: WorkQueueNames.stream,
      subjects: [Subjects.chatQueueAll],
      retention: RetentionPolicy.Workqueue,
      storage: this.opts.storage === 'file' ? StorageType.File : StorageType.Memory,
      max_msgs: limits.maxJobs,
      max_msgs_per_subject: limits.maxPerUser,
      discard: DiscardPolicy.New,
      discard_new_per_subject: true,
      max_age: nanos(limits.maxAgeMs),
      duplicate_window: nanos(Math.min(DUPLICATE_WINDOW_MS, limits.maxAgeMs)),
      num_replicas: limits.replicas,
    };
  }

  private consumerConfig(): Partial<ConsumerConfig> & { durable_name: string } {
    const { limits } = this.opts;
    return {
      durable_name: WorkQueueNames.consumer,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(limits.ackWaitMs),
      max_deliver: limits.maxDeliver,
      max_ack_pending: limits.maxJobs,
      max_waiting: MAX_WAITING_PULLS,
      num_replicas: limits.replicas,
    };
  }

  private async ensure(): Promise<void> {
    const jsm = await this.manager();
    const stream = this.streamConfig();
    // Another configuration (bounds changed by a deploy) is brought to this one.
    if ((await ensureStream(jsm, stream)) === 'updated') this.opts.logger.info({ stream: stream.name }, 'work queue stream updated');
    const consumer = this.consumerConfig();
    try {
      await jsm.consumers.add(WorkQueueNames.stream, consumer);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && (err.code === CONSUMER_EXISTS || err.code === CONSUMER_NAME_EXISTS))) throw err;
      const { durable_name, ...update } = consumer;
      delete update.max_waiting; // fixed at creation
      await jsm.consumers.update(WorkQueueNames.stream, durable_name, update);
      this.opts.logger.info({ consumer: durable_name }, 'work queue consumer updated');
    }
    this.consumer = undefined;
  }
}

function isMissing(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === STREAM_NOT_FOUND || err.code === CONSUMER_NOT_FOUND);
}

function wrap(m: JsMsg): QueuedMessage {
  let headers: BusHeaders | undefined;
  return {
    data: m.data,
    get headers(): BusHeaders {
      if (headers === undefined) {
        headers = {};
        if (m.headers) for (const k of m.headers.keys()) headers[k.toLowerCase()] = m.headers.get(k);
      }
      return headers;
    },
    deliveryCount: m.info.deliveryCount,
    working: () => {
      try {
        m.working();
      } catch {
        // A lost connection: the queue redelivers the job if this worker does not come back in time.
      }
    },
    ack: async () => {
      // Confirmed, and tried once more: a lost ack means the job runs again elsewhere after the ack wait.
      for (let i = 0; i < 2; i++) {
        try {
          if (await m.ackAck({ timeout: 2_000 })) return;
        } catch {
          /* try again */
        }
      }
    },
    nak: (delayMs) => {
      try {
        m.nak(delayMs);
      } catch {
        // The job comes back after the ack wait all the same.
      }
    },
  };
}
