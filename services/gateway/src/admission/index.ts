export { Admission, AdmissionRefusal, type AdmissionStore, type AdmissionSubject, type AdmissionTicket, type AnswerCost } from './admission.js';
export { ConnectionSlots, MemorySlotStore, RedisSlotStore, type SlotClaim, type SlotStore } from './connection-slots.js';
export * from './limits.js';
export { rateLimitHeaders, type PolicyState } from './ratelimit-headers.js';
export { TokenBucket } from './token-bucket.js';
export { subjectOf } from './subject.js';
