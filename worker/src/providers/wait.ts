import type { Clock } from '../../../common/clock.ts';
import { abortedError } from './scrub.ts';

/** Waits `ms` on the injected clock; rejects with an `aborted` ProviderError when the signal fires. */
export function abortableDelay(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortedError());
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(abortedError());
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
