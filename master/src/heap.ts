/**
 * How far the master lets its V8 heap grow past what it holds live.
 *
 * After each full collection V8 sets the next one's threshold at a multiple
 * of the live heap, and under the master's load it chooses about three: with
 * ~50 MB live (a few thousand tasks done, a thousand workers registered), the
 * old space grew to 130–140 MB, mostly garbage waiting for a collection, and
 * that headroom was the largest part of the master's resident memory. A 1.5×
 * threshold keeps it near 70 MB: full collections run more often, each
 * marking the same ~50 MB, mostly on V8's background thread. The factor is
 * read at every collection, so setting it here, first thing at start, is the
 * same as `node --heap-growing-percent=50`, and reaches every way the master
 * is started (`flota up`, the images, the benchmark). A flag given on the
 * command line wins.
 */
import v8 from 'node:v8';

/** The old space may grow to (1 + this / 100) × the live heap before the next full collection. */
export const HEAP_GROWING_PERCENT = 50;

export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv): void {
  if (execArgv.some((arg) => arg.startsWith('--heap-growing-percent'))) return;
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
