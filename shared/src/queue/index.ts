export * from './work-queue.js';
export { MemoryWorkQueue } from './memory-work-queue.js';
export { JetStreamWorkQueue, type JetStreamWorkQueueOptions } from './jetstream-work-queue.js';
export { createWorkQueue, type WorkQueueConfig } from './create-work-queue.js';
export { userShard } from './user-shard.js';
export { ensureStream } from './ensure-stream.js';
