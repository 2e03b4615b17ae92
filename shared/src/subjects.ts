/** NATS subjects, versioned so that a new protocol can run beside the old one. */
export const Subjects = {
  /** Chat jobs; orchestrators take them in the `orchestrators` queue group. */
  chatRequest: 'chat.v1.request',
  /** Broadcast to every orchestrator: stop working on a request. */
  chatCancel: 'chat.v1.cancel',
  /** Frames of one request, addressed to the gateway that owns it. */
  chatFrames: (gatewayId: string, requestId: string) => `chat.v1.frames.${gatewayId}.${requestId}`,
  /** Every frame addressed to one gateway. */
  chatFramesOf: (gatewayId: string) => `chat.v1.frames.${gatewayId}.>`,
  /** Cache administration, answered by any orchestrator (the figures live in Redis). */
  cacheStats: 'cache.v1.stats',
  cacheInvalidate: 'cache.v1.invalidate',
  cacheHealth: 'cache.v1.health',
  /** Liveness of the worker pool: any orchestrator answers. */
  workerPing: 'orchestrator.v1.ping',
} as const;

export const QueueGroups = { orchestrators: 'orchestrators' } as const;

/** A token safe inside a subject: no dots, wildcards or white space. */
export const SUBJECT_TOKEN = /^[A-Za-z0-9_-]{1,64}$/;
