import type { Bus } from '../bus/bus.js';
import { encodeJson } from '../contracts/codec.js';
import { JobSubjects, type JobEvent, type JobEventDraft } from '../contracts/jobs.js';
import type { JobStore } from './job-store.js';

/**
 * Publishes a job's events: numbered and kept with the job first (replay for SSE `Last-Event-ID` and for a
 * client that reconnects), then on the owner's subject, where every gateway with a socket of that owner relays
 * it. Core NATS may drop a message while a connection is down; the kept copy is what makes that repairable.
 */
export class JobEvents {
  constructor(
    private readonly store: JobStore,
    private readonly bus: Bus,
  ) {}

  /** The event as published, or undefined when the job no longer exists. */
  async emit(owner: string, draft: JobEventDraft): Promise<JobEvent | undefined> {
    const event = await this.store.appendEvent(draft);
    if (event) this.bus.publish(JobSubjects.events(owner), encodeJson(event));
    return event;
  }
}
