import { Subjects, decodeFrames, type Bus, type BusMessage, type BusSubscription, type Frame } from '@actionedx/shared';
import type { Logger } from '@actionedx/shared';
import type { GatewayMetrics } from '../metrics.js';

/** One request's receiver of frames. */
export interface FrameTarget {
  onFrame(frame: Frame): void;
  /** The job published with this request's subject as its reply found no worker subscribed. */
  onNoResponders(): void;
  /** The target threw while handling a frame (e.g. a transport write failed). */
  onFrameError(err: unknown): void;
}

type Counted = { inc(): void };

/**
 * Routes every frame addressed to this gateway to its request, by `request_id`.
 * One bus subscription for the whole gateway: nothing is subscribed per request.
 */
export class FrameRouter {
  private readonly targets = new Map<string, FrameTarget>();
  private subscription: BusSubscription | undefined;
  private readonly received: Record<Frame['type'], Counted>;
  private readonly unknownRequest: Counted;
  private readonly malformed: Counted;

  constructor(
    private readonly bus: Bus,
    private readonly gatewayId: string,
    metrics: Pick<GatewayMetrics, 'bus' | 'chat'>,
    private readonly logger: Logger,
  ) {
    // Children bound once: the per-frame cost is one increment, no label lookup.
    const frames = metrics.bus.frames;
    this.received = {
      ack: frames.labels('ack', 'received'),
      heartbeat: frames.labels('heartbeat', 'received'),
      chunk: frames.labels('chunk', 'received'),
      reset: frames.labels('reset', 'received'),
      done: frames.labels('done', 'received'),
      error: frames.labels('error', 'received'),
      queued: frames.labels('queued', 'received'),
    };
    this.unknownRequest = metrics.chat.droppedFrames.labels('unknown_request');
    this.malformed = metrics.chat.droppedFrames.labels('malformed');
  }

  get size(): number {
    return this.targets.size;
  }

  start(): void {
    if (this.subscription) return;
    this.subscription = this.bus.subscribe(Subjects.chatFramesOf(this.gatewayId), (msg) => this.route(msg));
  }

  stop(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }

  /** False when a request with this id is already in flight here. */
  attach(requestId: string, target: FrameTarget): boolean {
    if (this.targets.has(requestId)) return false;
    this.targets.set(requestId, target);
    return true;
  }

  detach(requestId: string, target: FrameTarget): void {
    if (this.targets.get(requestId) === target) this.targets.delete(requestId);
  }

  private route(msg: BusMessage): void {
    if (msg.noResponders) return this.routeNoResponders(msg.subject);
    let frames: Frame[];
    try {
      frames = decodeFrames(msg.data);
    } catch (err) {
      this.malformed.inc();
      this.logger.warn({ subject: msg.subject, err }, 'dropped a malformed frame');
      return;
    }
    for (const frame of frames) {
      this.received[frame.type].inc();
      const target = this.targets.get(frame.request_id);
      // Late frames of a finished request are normal (a superseded worker still talking).
      if (target === undefined) {
        this.unknownRequest.inc();
        continue;
      }
      try {
        target.onFrame(frame);
      } catch (err) {
        target.onFrameError(err);
      }
    }
  }

  /** The subject names the request: `chat.v1.frames.<gateway>.<request_id>`. */
  private routeNoResponders(subject: string): void {
    const target = this.targets.get(subject.slice(subject.lastIndexOf('.') + 1));
    if (target === undefined) return this.unknownRequest.inc();
    target.onNoResponders();
  }
}
