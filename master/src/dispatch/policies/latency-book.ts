import type { CompletionSample } from './types.ts';

/** Weight of the newest sample in the moving average. */
export const EWMA_ALPHA = 0.3;

/**
 * Exponentially weighted moving average of processing time per (worker,
 * model): ewma ← ewma + α·(sample − ewma), the first sample taken as is.
 */
export class LatencyBook {
  private readonly byWorker = new Map<string, Map<string, number>>();

  constructor(private readonly alpha = EWMA_ALPHA) {}

  /** Records one sample; false (and nothing recorded) when the sample is not a usable duration. */
  observe(sample: CompletionSample): boolean {
    const { workerId, model, processingMs } = sample;
    if (typeof workerId !== 'string' || workerId === '') return false;
    if (typeof model !== 'string' || model === '') return false;
    if (typeof processingMs !== 'number' || !Number.isFinite(processingMs) || processingMs < 0)
      return false;
    let models = this.byWorker.get(workerId);
    if (!models) {
      models = new Map();
      this.byWorker.set(workerId, models);
    }
    const previous = models.get(model);
    models.set(
      model,
      previous === undefined ? processingMs : previous + this.alpha * (processingMs - previous),
    );
    return true;
  }

  /** The current average, or undefined while the pair has no sample. */
  estimate(workerId: string, model: string): number | undefined {
    return this.byWorker.get(workerId)?.get(model);
  }

  forget(workerId: string): void {
    this.byWorker.delete(workerId);
  }
}
