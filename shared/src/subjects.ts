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
  /** Every frame of every request (the in-process bus's tests watch them all). */
  chatFramesAll: 'chat.v1.frames.>',
  /**
   * The retained copy of one request's frames, published by the worker beside them in batches (`RetainedFrames`):
   * the retention stream (`CHAT_FRAMES`) captures these, so any gateway can replay an answer (resume) while the
   * live frames stay core NATS messages that cost the broker nothing to keep.
   */
  chatRetained: (gatewayId: string, requestId: string) => `chat.v1.retained.${gatewayId}.${requestId}`,
  chatRetainedAll: 'chat.v1.retained.>',
  /** The owner of an answer and, once it is done, the answer itself (the `CHAT_ANSWERS` stream keeps the last). */
  chatAnswer: (requestId: string) => `chat.v1.answers.${requestId}`,
  chatAnswersAll: 'chat.v1.answers.*',
  /** A client resumed an answer that this gateway runs for a client that left: keep it going (no cancel). */
  resumeClaims: (gatewayId: string) => `chat.v1.resumed.${gatewayId}`,
  /** Cache administration, answered by any orchestrator (the figures live in Redis). */
  cacheStats: 'cache.v1.stats',
  cacheInvalidate: 'cache.v1.invalidate',
  cacheHealth: 'cache.v1.health',
  /** A user's turns of a session, from the conversation store: any orchestrator answers. */
  conversationHistory: 'conversation.v1.history',
  /** A user's sessions that have turns: any orchestrator answers. */
  conversationSessions: 'conversation.v1.sessions',
  /** One orchestrator's model-target breakers (each replica keeps its own): any orchestrator answers. */
  workerBreakers: 'orchestrator.v1.breakers',
  /** Liveness of the worker pool: any orchestrator answers. */
  workerPing: 'orchestrator.v1.ping',
  /**
   * Jobs waiting for a model call (JetStream work queue), one subject per user shard: a hash of the user id,
   * never the id itself, so the stream's per-subject limit is the per-user share.
   */
  chatQueue: (userShard: string) => `chat.v1.queue.${userShard}`,
  chatQueueAll: 'chat.v1.queue.>',
  /**
   * Everything said on one collaboration session (turns, the answer's frames, typing, presence, notices), for the
   * gateways with a member's socket. The id is a gateway-made `cs_<hex>`: a single subject token.
   */
  sessionEvents: (sessionId: string) => `session.${sessionId}.events`,
} as const;

/** The JetStream work queue of chat jobs and its one durable pull consumer, shared by every orchestrator. */
export const WorkQueueNames = { stream: 'CHAT_QUEUE', consumer: 'orchestrators' } as const;

/** The JetStream streams that retain answers for resuming (gateway/src/resume). */
export const ResumeStreamNames = { frames: 'CHAT_FRAMES', answers: 'CHAT_ANSWERS' } as const;

export const QueueGroups = { orchestrators: 'orchestrators' } as const;

/** A token safe inside a subject: no dots, wildcards or white space. */
export const SUBJECT_TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

const FRAMES_PREFIX = 'chat.v1.frames.';

/** The retained subject of a request's frame subject (a job's `reply_to`); undefined for any other subject. */
export const retainedSubjectOf = (framesSubject: string): string | undefined =>
  framesSubject.startsWith(FRAMES_PREFIX) ? `chat.v1.retained.${framesSubject.slice(FRAMES_PREFIX.length)}` : undefined;
