/** A local worker starts only once the master has issued its credential, and with it. */
import { describe, expect, it, vi } from 'vitest';
import type { WorkerProcess } from '../../../autoscaler/src/drivers/local.ts';
import { credentialedWorker } from '../../../autoscaler/src/main.ts';

function fakeSpawn() {
  const started: NodeJS.ProcessEnv[] = [];
  const stop = vi.fn(async () => undefined);
  const spawn = (env: NodeJS.ProcessEnv): WorkerProcess => {
    started.push(env);
    return { exited: Promise.resolve(), stop };
  };
  return { spawn, started, stop };
}

describe('credentialedWorker', () => {
  it('starts the worker with its credential as WORKER_TOKEN', async () => {
    const { spawn, started } = fakeSpawn();
    const worker = credentialedWorker({ WORKER_ID: 'local-1' }, Promise.resolve('fwt1.x'), spawn);
    await worker.exited;
    expect(started).toEqual([{ WORKER_ID: 'local-1', WORKER_TOKEN: 'fwt1.x' }]);
  });

  it('never starts when no credential comes, and says why', async () => {
    const { spawn, started } = fakeSpawn();
    const worker = credentialedWorker({}, Promise.reject(new Error('403 forbidden')), spawn);
    await expect(worker.exited).rejects.toThrow('403 forbidden');
    await worker.stop();
    expect(started).toEqual([]);
  });

  it('never starts when stopped while its credential is on the way', async () => {
    const { spawn, started, stop } = fakeSpawn();
    let issue: (credential: string) => void = () => undefined;
    const credential = new Promise<string>((resolve) => {
      issue = resolve;
    });
    const worker = credentialedWorker({}, credential, spawn);
    const stopping = worker.stop();
    issue('fwt1.late');
    await stopping;
    await worker.exited;
    expect(started).toEqual([]);
    expect(stop).not.toHaveBeenCalled();
  });
});
