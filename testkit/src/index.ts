export * from './processes.js';
export * from './stack.js';
export * from './clients.js';
export * from './seed-client.js';
export * from './gateway/fake-worker.js';
export * from './gateway/test-gateway.js';
export * from './gateway/test-socket.js';
export * from './auth.js';
