import type { DbMetrics } from '@actionedx/shared';
import { StoreError, type StoreOperation } from './store-error.js';

export type MeasuredOperation = Exclude<StoreOperation, 'connect'>;

/**
 * The one place a store operation is counted and timed: `db_operations_total{operation,collection,status}`
 * and `db_operation_latency_seconds{operation,collection}`. A failure is counted and rethrown as a `StoreError`.
 */
export class StoreInstrumentation {
  constructor(
    private readonly metrics: DbMetrics,
    readonly collection: string,
  ) {}

  async measure<T>(operation: MeasuredOperation, run: () => Promise<T> | T): Promise<T> {
    const labels = { operation, collection: this.collection };
    const stopTimer = this.metrics.latency.startTimer(labels);
    try {
      const value = await run();
      this.metrics.operations.inc({ ...labels, status: 'ok' });
      return value;
    } catch (err) {
      this.metrics.operations.inc({ ...labels, status: 'error' });
      throw err instanceof StoreError ? err : new StoreError(operation, this.collection, err);
    } finally {
      stopTimer();
    }
  }
}
