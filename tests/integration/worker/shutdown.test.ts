/**
 * A worker told to stop leaves even when its broker cannot take its goodbye:
 * a broker that never confirms the offline record, or one already gone (as
 * when a whole stack is removed at once). It never waits for the broker.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../common/logger.ts';
import { loadWorkerConfig, startWorker, type WorkerHandle } from '../../../worker/src/main.ts';
import { OFFLINE_CONFIRM_WAIT_MS } from '../../../worker/src/mqtt-link.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { LogSink, startBroker, startMaster, type TestBroker, type TestMaster } from './support.ts';

const parts: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  await Promise.all(parts.splice(0).map((p) => p.close().catch(() => undefined)));
});

async function fleet(): Promise<{
  broker: TestBroker;
  master: TestMaster;
  worker: WorkerHandle;
  sink: LogSink;
}> {
  const [broker, master] = await Promise.all([startBroker(), startMaster()]);
  parts.push(broker, master);
  const id = `w-stop-${randomBytes(3).toString('hex')}`;
  const sink = new LogSink();
  const worker = await startWorker(
    loadWorkerConfig({
      MQTT_URL: broker.url,
      MQTT_PREFIX: `test-${id}/v1`,
      MASTER_GRPC: master.address,
      WORKER_TOKEN: 'test-credential',
      WORKER_ID: id,
      HEARTBEAT_MS: '100',
      SHUTDOWN_GRACE_MS: '1000',
    }),
    { logger: createLogger({ source: id, level: 'debug', destination: sink }) },
  );
  await waitFor(() => sink.has('connected to broker'), { what: 'the worker on its broker' });
  return { broker, master, worker, sink };
}

/** How long `work` took, in ms. */
async function timed(work: Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work;
  return performance.now() - start;
}

describe('a stopping worker', () => {
  it('leaves without the broker confirming its offline record', async () => {
    const { broker, worker, sink } = await fleet();
    // The broker takes the goodbye but never acknowledges it (stuck, or dying).
    broker.broker.authorizePublish = (_client, packet, callback) => {
      if (!String(packet.payload).includes('"shutdown"')) callback(null);
    };
    const ms = await timed(worker.close());
    expect(ms).toBeLessThan(OFFLINE_CONFIRM_WAIT_MS + 2_000);
    expect(sink.has('offline status not confirmed by the broker: leaving without it')).toBe(true);
  });

  it('leaves at once when its broker is already gone', async () => {
    const { broker, worker, sink } = await fleet();
    await broker.close();
    await waitFor(() => sink.has('broker connection lost'), {
      what: 'the worker to lose its broker',
    });
    const ms = await timed(worker.close());
    expect(ms).toBeLessThan(OFFLINE_CONFIRM_WAIT_MS);
  });
});
