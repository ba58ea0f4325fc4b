/**
 * A worker whose master was unreachable for a long time (a network cut, a
 * master restarting slowly) must deliver its result as soon as the master is
 * back. grpc-js alone would by then wait up to 120 s between dials; the
 * worker's channel caps that at 2 s (GRPC_CHANNEL_OPTIONS).
 */
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskAck__Output } from '../../../proto/src/grpc.ts';
import { createResultReporter, type ResultReporter } from '../../../worker/src/grpc-link.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { startMaster, type TestMaster } from './support.ts';

/**
 * Dials after which grpc-js's default backoff (1 s, ×1.6 per failure) waits
 * more than 10 s before the next one; with the cap the worker gets there in
 * about 12 s.
 */
const DIALS = 10;

/** A master host whose gRPC port accepts TCP and drops it at once: every dial fails, and is counted. */
async function startDeadEnd() {
  const dials: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    dials.push(Date.now());
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    dials,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

let reporter: ResultReporter | undefined;
let master: TestMaster | undefined;
afterEach(async () => {
  reporter?.close();
  await master?.close();
  reporter = undefined;
  master = undefined;
});

describe('worker gRPC link after a long outage', () => {
  it('keeps dialling an absent master and delivers its result within seconds of its return', async () => {
    const deadEnd = await startDeadEnd();
    reporter = createResultReporter({
      address: `127.0.0.1:${deadEnd.port}`,
      workerId: 'outage-worker',
      credential: 'outage-worker-credential',
      channelCredentials: grpc.credentials.createInsecure(),
      log: pino({ level: 'silent' }),
    });
    let ack: TaskAck__Output | undefined;
    let settled = false;
    const delivered = reporter
      .report(
        {
          taskId: 'task-outage',
          attempt: 1,
          lease: 'lease-1',
          workerId: 'outage-worker',
          text: 'done',
        },
        Date.now() + 120_000,
      )
      .then((value) => {
        ack = value;
        settled = true;
      });

    await waitFor(() => deadEnd.dials.length >= DIALS, {
      what: `${DIALS} dials to the absent master`,
      timeoutMs: 30_000,
    });
    const gaps = deadEnd.dials.slice(1).map((at, i) => at - (deadEnd.dials[i] as number));
    // The cap (2 s, up to 20 % jitter) plus the report's own retry delay (2 s).
    expect(Math.max(...gaps)).toBeLessThan(4_500);

    await deadEnd.close();
    master = await startMaster(deadEnd.port);
    const backAt = Date.now();
    await waitFor(() => settled, {
      what: 'the result to reach the returned master',
      timeoutMs: 6_000,
    });
    await delivered;
    expect(ack?.accepted).toBe(true);
    expect(master.reports.map((r) => r.result.taskId)).toEqual(['task-outage']);
    expect(Date.now() - backAt).toBeLessThan(6_000);
  }, 60_000);
});
