import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Usage } from '@actionedx/shared';
import type { PromptMessage } from '../tasks/index.js';

/** The BPE encodings of OpenAI's model families that `gpt-tokenizer` ships. */
export type EncodingName = 'o200k_base' | 'cl100k_base';

/** gpt-4 and gpt-3.5 speak cl100k; the 4o, 4.1, 4.5, 5 and o-series families, and models we do not know, o200k. */
const CL100K = /^(gpt-4(?!o|\.)|gpt-3\.5|text-embedding-(ada|3))/;

export const encodingOf = (model: string): EncodingName => (CL100K.test(model) ? 'cl100k_base' : 'o200k_base');

const require = createRequire(import.meta.url);

/**
 * The counting thread. Loading an encoding parses megabytes of ranks (o200k: about 0.7 s of CPU and 70 MB):
 * on the main thread that would freeze every stream of the replica, long enough for gateways to presume it
 * dead. Plain CommonJS, run with `eval`, so the same code works from the sources and from dist.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const encodings = new Map();
const load = (path) => {
  let enc = encodings.get(path);
  if (!enc) encodings.set(path, (enc = require(path)));
  return enc;
};
parentPort.on('message', (m) => {
  try {
    const enc = load(m.path);
    if (m.kind === 'load') return parentPort.postMessage({ id: m.id, ok: true });
    const prompt = enc.encodeChat(m.messages, m.chatModel).length;
    const completion = enc.countTokens(m.text);
    parentPort.postMessage({ id: m.id, ok: true, prompt, completion });
  } catch (err) {
    parentPort.postMessage({ id: m.id, ok: false, error: String(err && err.message || err) });
  }
});
`;

interface Reply {
  id: number;
  ok: boolean;
  prompt?: number;
  completion?: number;
  error?: string;
}

/**
 * Counts tokens with `gpt-tokenizer` when a provider sends no usage: the figure is then an estimate (exact for
 * OpenAI's own models, close for others). The work happens on a worker thread started on first need;
 * `prepare` starts it (and loads the model's encoding) as soon as a stream looks like it will carry no usage.
 */
export class TokenCounter {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly waiting = new Map<number, (r: Reply) => void>();

  prepare(model: string): void {
    void this.ask({ kind: 'load', path: pathOf(encodingOf(model)) }).catch(() => {});
  }

  async usage(model: string, messages: readonly PromptMessage[], completion: string): Promise<Usage> {
    const name = encodingOf(model);
    const r = await this.ask({
      kind: 'count',
      path: pathOf(name),
      chatModel: name === 'cl100k_base' ? 'gpt-4' : 'gpt-4o',
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      text: completion,
    }).catch(() => undefined);
    // Should the thread fail, a rough count (4 characters a token) still keeps tokens that flowed from costing 0.
    const rough = (text: string) => Math.ceil(text.length / 4);
    const prompt_tokens = r?.prompt ?? rough(messages.map((m) => m.content).join('\n'));
    const completion_tokens = r?.completion ?? rough(completion);
    return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
  }

  /** Stops the counting thread (a later count starts a new one). */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }

  private ask(message: Record<string, unknown>): Promise<Reply> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, (r) => (r.ok ? resolve(r) : reject(new Error(`token count failed: ${r.error}`))));
      worker.postMessage({ ...message, id });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    // The thread never keeps the process alive; it lives as long as the replica.
    worker.unref();
    worker.on('message', (r: Reply) => {
      const settle = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      settle?.(r);
    });
    worker.on('error', (err) => this.fail(worker, err));
    worker.on('exit', () => this.fail(worker, new Error('the token counting thread exited')));
    this.worker = worker;
    return worker;
  }

  private fail(worker: Worker, err: Error): void {
    if (this.worker === worker) this.worker = undefined;
    for (const settle of this.waiting.values()) settle({ id: -1, ok: false, error: err.message });
    this.waiting.clear();
  }
}

const pathOf = (name: EncodingName): string => require.resolve(`gpt-tokenizer/encoding/${name}`);
