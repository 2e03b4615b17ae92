import type { BurstJob, BurstResult, IdleOpenJob, Job, LoadJob, LoadResult, SeqJob, Tally } from '../clients/worker.js';
import { nextMessage, spawnNode, type NodeChild } from './procs.js';

export type { LoadResult, Tally, BurstResult } from '../clients/worker.js';

/** A load-generating Node process (bench/dist/clients/worker.js) driven over IPC. */
export class ClientProcess {
  private n = 0;

  private constructor(readonly child: NodeChild) {}

  static async start(): Promise<ClientProcess> {
    const child = spawnNode('clients/worker.js');
    await nextMessage(child, (m) => m?.ready === true, 10_000, 'client process start');
    return new ClientProcess(child);
  }

  private async run<T>(job: Job, timeoutMs: number, id = ++this.n): Promise<T> {
    const answer = nextMessage<{ ok: boolean; result?: T; error?: string }>(this.child, (m) => m?.id === id, timeoutMs, `client job ${job.type}`);
    this.child.send({ id, job });
    const m = await answer;
    if (!m.ok) throw new Error(`client job ${job.type} failed: ${m.error}`);
    return m.result as T;
  }

  load(job: Omit<LoadJob, 'type'>): Promise<LoadResult> {
    return this.run({ type: 'load', ...job }, job.durationMs + 120_000);
  }

  /**
   * A load whose clock starts on `go()`: `warm` resolves once its sessions are open and warmed up. Used to start
   * several client processes together and to read CPU counters at that moment.
   */
  loadSynced(job: Omit<LoadJob, 'type' | 'sync'>): { warm: Promise<void>; go(): void; result: Promise<LoadResult> } {
    const id = ++this.n;
    const timeoutMs = job.durationMs + 120_000;
    const warm = nextMessage(this.child, (m) => m?.loadWarm === id, timeoutMs, 'client load warm-up').then(() => undefined);
    const result = this.run<LoadResult>({ type: 'load', ...job, sync: true }, timeoutMs, id);
    // When the load fails, `result` says why; `warm` then fails too (the process exits) or never matters.
    warm.catch(() => {});
    return { warm, go: () => this.child.send({ go: id }), result };
  }

  seq(job: Omit<SeqJob, 'type'>): Promise<Record<string, Tally>> {
    return this.run({ type: 'seq', ...job }, job.maxMs + 120_000);
  }

  burst(job: Omit<BurstJob, 'type'>): Promise<BurstResult> {
    return this.run({ type: 'burst', ...job }, 120_000);
  }

  idleOpen(job: Omit<IdleOpenJob, 'type'>): Promise<{ opened: number; failed: number; errors: string[]; ms: number }> {
    return this.run({ type: 'idle-open', ...job }, 180_000);
  }

  idleClose(): Promise<{ closed: number; stillOpen: number }> {
    return this.run({ type: 'idle-close' }, 60_000);
  }

  stop(): Promise<void> {
    return this.child.stop();
  }
}
