export * from './bus.js';
export { InProcessBus } from './in-process-bus.js';
export { NatsBus, type NatsBusOptions } from './nats-bus.js';
export { subjectMatches } from './subject-match.js';
export { DeferredBus } from './deferred-bus.js';
export { natsConnectionOf } from './nats-connection.js';
