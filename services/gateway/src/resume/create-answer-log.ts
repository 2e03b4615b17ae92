import { natsConnectionOf, type Bus, type Logger } from '@actionedx/shared';
import type { AnswerLog } from './answer-log.js';
import { JetStreamAnswerLog } from './jetstream-answer-log.js';
import { MemoryAnswerLog } from './memory-answer-log.js';
import type { ResumeConfig } from './resume-config.js';

/** The one place that picks an answer log: JetStream on a NATS bus, this process's memory on the in-process bus. */
export function createAnswerLog(bus: Bus, config: ResumeConfig, logger: Logger): AnswerLog {
  const bounds = {
    windowMs: config.windowMs,
    maxBytesPerAnswer: config.maxBytesPerAnswer,
    storeMaxBytes: config.storeMaxBytes,
    answerTtlMs: config.answerTtlMs,
  };
  if (bus.kind === 'in-process') return new MemoryAnswerLog(bus, bounds);
  const connection = async () => {
    const nc = await natsConnectionOf(bus);
    if (!nc) throw new Error('a NATS bus without a NATS connection');
    return nc;
  };
  return new JetStreamAnswerLog(connection, { ...bounds, logger });
}
