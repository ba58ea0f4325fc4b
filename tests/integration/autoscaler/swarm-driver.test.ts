/**
 * The swarm driver through the real dockerode and docker-modem, against a
 * local Engine on a unix socket that answers in the Engine API's shapes
 * (tests/helpers/fake-docker-engine.ts): what it reads, what it sends back,
 * how it retries a conflicting update and what it says when it cannot work.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Docker from 'dockerode';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PoolSpec } from '../../../autoscaler/src/config.ts';
import type { ScaleDriver } from '../../../autoscaler/src/drivers/driver.ts';
import {
  createSwarmDriver,
  DockerEngineError,
  type SwarmDriverOptions,
  SwarmServiceError,
} from '../../../autoscaler/src/drivers/swarm.ts';
import { ConflictError } from '../../../common/errors.ts';
import { createLogger } from '../../../common/logger.ts';
import { type FakeDockerEngine, startFakeDockerEngine } from '../../helpers/fake-docker-engine.ts';

const pool = (name: string): PoolSpec => ({
  name,
  capability: 'cpu',
  workerPrefix: 'cpu-',
  policy: {
    min: 0,
    max: 8,
    stepUp: 2,
    stepDown: 1,
    cooldownUpMs: 0,
    cooldownDownMs: 0,
    upAfterDownMs: 0,
    targetUtilisation: 0.8,
    slotsPerWorker: 2,
  },
});
const CPU = pool('worker-cpu');

let engine: FakeDockerEngine;
let lines: Array<Record<string, unknown>>;
const drivers: ScaleDriver[] = [];

function driver(options: Partial<SwarmDriverOptions> = {}): ScaleDriver {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const { logger } = createLogger({ source: 'autoscaler', level: 'debug', destination: sink });
  const created = createSwarmDriver({
    socketPath: engine.socketPath,
    stack: 'flota',
    log: logger,
    ...options,
  });
  drivers.push(created);
  return created;
}

const updates = () => engine.requests.filter((r) => r.method === 'POST');

beforeEach(async () => {
  engine = await startFakeDockerEngine();
  lines = [];
});

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.close()));
  await engine.close();
});

describe('swarm driver', () => {
  it('reads the replicas of <stack>_<pool>, or of <pool> without a stack', async () => {
    engine.addService('flota_worker-cpu', { replicas: 3 });
    engine.addService('worker-cpu', { replicas: 5 });
    expect(await driver().replicas(CPU)).toBe(3);
    expect(await driver({ stack: undefined }).replicas(CPU)).toBe(5);
    expect(engine.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /services/flota_worker-cpu',
      'GET /services/worker-cpu',
    ]);
  });

  it('scales up and down, quoting the version read and changing nothing but the replicas', async () => {
    const service = engine.addService('flota_worker-cpu', { replicas: 2 });
    const original = structuredClone(service.Spec);
    const swarm = driver();

    const firstVersion = service.Version.Index;
    await swarm.scale(CPU, 5, []);
    const secondVersion = engine.service('flota_worker-cpu')!.Version.Index;
    await swarm.scale(CPU, 1, []);

    const [up, down] = updates();
    expect(up).toMatchObject({ path: '/services/flota_worker-cpu/update' });
    expect(up?.query).toEqual({ version: String(firstVersion) });
    expect(down?.query).toEqual({ version: String(secondVersion) });
    expect(secondVersion).toBeGreaterThan(firstVersion);
    expect(up?.body).toEqual({ ...original, Mode: { Replicated: { Replicas: 5 } } });
    expect(down?.body).toEqual({ ...original, Mode: { Replicated: { Replicas: 1 } } });
    expect(await swarm.replicas(CPU)).toBe(1);

    const scaled = lines.filter((l) => l.msg === 'scaled flota_worker-cpu from 2 to 5');
    expect(scaled).toEqual([
      expect.objectContaining({
        level: 'info',
        component: 'swarm-driver',
        pool: 'worker-cpu',
        service: 'flota_worker-cpu',
        from: 2,
        to: 5,
        version: firstVersion,
      }),
    ]);
  });

  it('sends no update when the service already runs that many', async () => {
    engine.addService('flota_worker-cpu', { replicas: 4 });
    await driver().scale(CPU, 4, []);
    expect(updates()).toEqual([]);
  });

  it('reads the service again when someone else updated it in between, keeping their change', async () => {
    engine.addService('flota_worker-cpu', { replicas: 2 });
    engine.interfere(1, (spec) => {
      (spec.Labels as Record<string, string>).owner = 'someone else';
    });
    await driver().scale(CPU, 6, []);

    expect(engine.requests.map((r) => r.method)).toEqual(['GET', 'POST', 'GET', 'POST']);
    const final = engine.service('flota_worker-cpu')!.Spec;
    expect(final.Mode).toEqual({ Replicated: { Replicas: 6 } });
    expect(final.Labels).toMatchObject({ owner: 'someone else' });
    expect(lines.find((l) => l.level === 'warn')).toMatchObject({
      msg: 'service changed between read and update; reading it again',
      attempt: 1,
    });
  });

  it('gives up with a ConflictError when every attempt is out of sequence', async () => {
    engine.addService('flota_worker-cpu', { replicas: 2 });
    engine.interfere(3, () => {});
    const failure = driver().scale(CPU, 6, []);
    await expect(failure).rejects.toBeInstanceOf(ConflictError);
    await expect(failure).rejects.toThrow(/changed under every one of 3 updates/);
    expect(updates()).toHaveLength(3);
    expect(engine.service('flota_worker-cpu')!.Spec.Mode).toEqual({ Replicated: { Replicas: 2 } });
  });

  it('names a missing service and the setting to check', async () => {
    engine.addService('other_worker-cpu');
    const swarm = driver();
    await expect(swarm.replicas(CPU)).rejects.toBeInstanceOf(SwarmServiceError);
    await expect(swarm.scale(CPU, 3, [])).rejects.toThrow(
      'no service flota_worker-cpu: is the stack deployed, and is AUTOSCALE_STACK (flota) its name?',
    );
    await expect(driver({ stack: undefined }).replicas(CPU)).rejects.toThrow(
      'no service worker-cpu: is the stack deployed, and is AUTOSCALE_STACK set to its name?',
    );
    expect(updates()).toEqual([]);
  });

  it('does not take a service whose ID merely starts with the pool name', async () => {
    const service = engine.addService('flota_worker-cpu');
    const prefix = service.ID.slice(0, 6);
    await expect(driver({ stack: undefined }).replicas(pool(prefix))).rejects.toThrow(
      `no service ${prefix}:`,
    );
  });

  it('refuses a global-mode service, saying what to change', async () => {
    engine.addService('flota_worker-cpu', { global: true });
    const swarm = driver();
    await expect(swarm.replicas(CPU)).rejects.toBeInstanceOf(SwarmServiceError);
    await expect(swarm.scale(CPU, 3, [])).rejects.toThrow(
      /service flota_worker-cpu runs in Global mode: only a replicated service can be scaled/,
    );
    expect(updates()).toEqual([]);
  });

  it('says when the socket cannot be reached, or the node is not a manager', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flota-no-engine-'));
    try {
      const socketPath = join(dir, 'docker.sock');
      const failure = driver({ socketPath }).replicas(CPU);
      await expect(failure).rejects.toBeInstanceOf(DockerEngineError);
      await expect(failure).rejects.toThrow(
        `cannot reach the Docker Engine at ${socketPath} (ENOENT): mount the socket`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    engine.addService('flota_worker-cpu');
    engine.notManager = true;
    await expect(driver().scale(CPU, 2, [])).rejects.toThrow(
      /is not a swarm manager \(This node is not a swarm manager\..*\): run the autoscaler on a manager node/,
    );
  });

  it('gives up on an Engine that does not answer', async () => {
    engine.addService('flota_worker-cpu');
    engine.stall = true;
    const started = Date.now();
    const failure = driver({ timeoutMs: 300 }).replicas(CPU);
    await expect(failure).rejects.toBeInstanceOf(DockerEngineError);
    await expect(failure).rejects.toThrow(/did not answer within 300 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('uses its socket even when DOCKER_HOST names another engine', async () => {
    engine.addService('flota_worker-cpu', { replicas: 2 });
    const before = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = 'tcp://127.0.0.1:9';
    try {
      expect(await driver().replicas(CPU)).toBe(2);
    } finally {
      if (before === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = before;
    }
  });

  it('closes idempotently and refuses calls afterwards', async () => {
    engine.addService('flota_worker-cpu');
    const swarm = driver();
    expect(await swarm.replicas(CPU)).toBe(1);
    await swarm.close();
    await swarm.close();
    await expect(swarm.replicas(CPU)).rejects.toThrow('the swarm driver is closed');
    expect(engine.requests).toHaveLength(1);
  });
});

describe('fake Docker Engine', () => {
  it('routes paths with an API version prefix, as docker-modem sends them', async () => {
    engine.addService('flota_worker-cpu', { replicas: 2 });
    const docker = new Docker({ socketPath: engine.socketPath, version: 'v1.45' });
    const service = await docker.getService('flota_worker-cpu').inspect();
    expect(service.Spec.Mode).toEqual({ Replicated: { Replicas: 2 } });
    expect(engine.requests[0]).toMatchObject({
      method: 'GET',
      path: '/services/flota_worker-cpu',
      apiVersion: 'v1.45',
    });
  });
});
