/**
 * A provider whose answers wait until the test releases them, so a test
 * holds tasks running as long as it needs. It serves only the models it is
 * given (as a local provider's catalog says), so a live config can be refused.
 */

import type { LocalModelProvider } from '../../worker/src/models/local-models.ts';
import { ABORTED_CODE, type Provider } from '../../worker/src/providers/types.ts';

export interface GatedProvider extends LocalModelProvider {
  /** Prompts running now. */
  readonly running: Set<string>;
  /** Lets the running task with this prompt answer. */
  release(prompt: string): void;
  releaseAll(): void;
}

export function createGatedProvider(servable: readonly string[]): GatedProvider {
  const running = new Set<string>();
  const gates = new Map<string, () => void>();
  const generate: Provider['generate'] = (request) =>
    new Promise((resolve, reject) => {
      const { prompt, signal } = request;
      running.add(prompt);
      const done = () => {
        running.delete(prompt);
        gates.delete(prompt);
      };
      gates.set(prompt, () => {
        done();
        resolve({ text: `done: ${prompt}` });
      });
      signal.addEventListener(
        'abort',
        () => {
          done();
          reject(Object.assign(new Error('aborted'), { code: ABORTED_CODE }));
        },
        { once: true },
      );
    });
  return {
    name: 'echo',
    generate,
    running,
    release: (prompt) => gates.get(prompt)?.(),
    releaseAll: () => {
      for (const gate of [...gates.values()]) gate();
    },
    catalog: () => servable.map((name) => ({ name, provider: 'echo' as const })),
    loaded: () => [],
    detectedKind: 'cpu',
    close: async () => {},
  };
}
