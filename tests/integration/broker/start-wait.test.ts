/**
 * A master started together with its external broker (MQTT_URL; a Swarm or
 * Compose deploy starts every service at once) waits for it, saying so,
 * instead of exiting; and it gives up after its bound.
 */
import { createServer, type Server } from 'node:net';
import { Writable } from 'node:stream';
import { Aedes } from 'aedes';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { StartupError } from '../../../common/errors.ts';
import { connectMqtt } from '../../../common/mqtt.ts';
import { waitForExternalBroker } from '../../../master/src/broker/external-broker.ts';
import { freePort } from '../../helpers/free-port.ts';

// Clients first: the server closes only once its connections have.
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function capturingLog() {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

async function startBroker(port: number): Promise<void> {
  const broker = await Aedes.createBroker();
  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  cleanups.push(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => broker.close(() => resolve()));
  });
}

describe('waitForExternalBroker', () => {
  it('waits for a broker that comes up later, and says that it waits', async () => {
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;
    const { log, lines } = capturingLog();
    const client = connectMqtt(url, { clientId: 'start-wait-master' });
    cleanups.push(async () => {
      await client.endAsync(true);
    });
    const waiting = waitForExternalBroker(client, url, log, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await startBroker(port);
    await waiting;
    const messages = lines.map((line) => line.msg);
    expect(messages.some((msg) => msg.startsWith('waiting for the MQTT broker to answer'))).toBe(
      true,
    );
    expect(messages).toContain('MQTT broker answered');
  }, 30_000);

  it('gives up after its bound with a StartupError that names the broker', async () => {
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;
    const { log } = capturingLog();
    const client = connectMqtt(url, { clientId: 'start-wait-master-2' });
    cleanups.push(async () => {
      await client.endAsync(true);
    });
    const error = await waitForExternalBroker(client, url, log, 800).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StartupError);
    expect((error as StartupError).message).toContain(
      `127.0.0.1:${port} did not answer within 800 ms`,
    );
  }, 20_000);
});
