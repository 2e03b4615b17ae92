/**
 * Tests beside the code that talk to a real server (or start the built services): they run in the
 * `integration` project, every other `*.test.ts` beside the code is a unit test. A new test beside the
 * code that needs Redis, NATS or MongoDB belongs in this list.
 */
export const INTEGRATION_BESIDE_CODE = [
  'shared/src/bus/bus.contract.test.ts', // the bus contract on NATS (and in process)
  'shared/src/queue/ensure-stream.test.ts', // JetStream streams created and updated on NATS
  'services/gateway/src/main.test.ts', // the built gateway as a process, on NATS
  'services/gateway/src/ws/session-store.test.ts', // WebSocket sessions in Redis
  'services/gateway/src/sessions/collab-store.test.ts', // collaboration sessions, presence and the turn lock in Redis (and in memory)
  'services/orchestrator/src/cache/cache-contract.test.ts', // the answer store and flight lock contract on Redis (and in memory)
  'services/orchestrator/src/cache/redis-answer-store.test.ts', // Redis, and redis-server processes of its own
  'services/orchestrator/src/cache/answer-flights.test.ts', // single flight across replicas on Redis (and in memory)
  'services/orchestrator/src/cache/cache-namespace.test.ts', // invalidating `*` on Redis
  'services/orchestrator/src/store/conversation-store.contract.test.ts', // the store contract on MongoDB (MONGO_URL), and in memory
  'shared/src/jobs/job-store.test.ts', // the job store on Redis
  'services/gateway/src/admission/request-leases.test.ts', // requests leased in blocks from Redis, by several replicas
  'shared/src/redis.test.ts', // the house Redis client's command timeout, on Redis and a server that hangs
  'services/gateway/src/jobs/jobs-http.test.ts', // the job endpoints against redis-servers of their own
  'services/orchestrator/src/jobs/job-runner.test.ts', // the job runner on Redis and a mock LLM
];
