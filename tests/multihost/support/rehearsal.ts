/**
 * The stack spread over machines: Mosquitto, Redis and the master each on a
 * machine of its own, worker-cpu slots 1 and 2 on "hosta", slot 3 on "hostb",
 * all joined by one switch. `stop()` tears everything down, also after a
 * failed start, and the process 'exit' hook does the same as a last resort.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogLine } from '../../../proto/src/schemas/log.ts';
import { dumpOutput, type FlotaProcess } from '../../e2e/support/flota-process.ts';
import { deadReason } from '../../e2e/support/system.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { brokerAccepts, MasterApi, redisAnswers } from './api.ts';
import { createLab, type Lab, type Machine, sweepLeftovers } from './netns.ts';
import { logLines } from './ns-process.ts';
import {
  prepareStack,
  resolveServices,
  type ServiceAddresses,
  type StackFiles,
  startMasterOn,
  startMosquittoOn,
  startRedisOn,
  startWorkerOn,
} from './stack.ts';

/** Worker-cpu slots per host: stack.yml names them cpu-<slot>. */
export const PLACEMENT = { hosta: [1, 2], hostb: [3] } as const;
export type HostName = keyof typeof PLACEMENT;
export const workersOn = (host: HostName) => PLACEMENT[host].map((slot) => `cpu-${slot}`);
const ALL_WORKERS = [...workersOn('hosta'), ...workersOn('hostb')];

const START_TIMEOUT_MS = 60_000;
/** Secrets and data of one run; named by the run so a later run can remove a crashed one's. */
const runDir = (id: string) => join(tmpdir(), `flota-multihost-${id}`);

export interface RehearsalOptions {
  /** ECHO_DELAY_MS of every worker: how long one task runs. */
  echoDelayMs: number;
}

export class Rehearsal {
  lab: Lab | undefined;
  api: MasterApi | undefined;
  readonly hosts = new Map<HostName, Machine>();
  readonly infra: FlotaProcess[] = [];
  master: FlotaProcess | undefined;
  readonly workers = new Map<string, FlotaProcess>();
  /** Run ids of earlier, crashed runs that start() removed. */
  leftoversRemoved: string[] = [];
  private dir: string | undefined;
  private readonly onExit = () => {
    this.lab?.destroy();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  };

  constructor(private readonly options: RehearsalOptions) {}

  all(): FlotaProcess[] {
    return [...this.infra, ...(this.master ? [this.master] : []), ...this.workers.values()];
  }

  dumpOutput(): void {
    dumpOutput(this.all());
  }

  /** The JSON log lines the master, or the worker with this id, wrote so far. */
  log(source: string): LogLine[] {
    const p = source === 'master' ? this.master : this.workers.get(source);
    return p ? logLines(p) : [];
  }

  async start(): Promise<void> {
    this.leftoversRemoved = sweepLeftovers();
    for (const id of this.leftoversRemoved) rmSync(runDir(id), { recursive: true, force: true });
    const lab = createLab();
    this.lab = lab;
    process.on('exit', this.onExit);
    this.dir = runDir(lab.id);
    mkdirSync(this.dir, { mode: 0o700 });
    const files = prepareStack(this.dir);
    const broker = lab.addMachine('mosquitto');
    const redis = lab.addMachine('redis');
    const master = lab.addMachine('master');
    for (const host of Object.keys(PLACEMENT) as HostName[]) {
      this.hosts.set(host, lab.addMachine(host));
    }
    const addresses: ServiceAddresses = {
      mosquitto: broker.address,
      redis: redis.address,
      master: master.address,
    };

    this.infra.push(startMosquittoOn(broker, files), startRedisOn(redis, files));
    await Promise.all([this.waitForBroker(files, addresses), this.waitForRedis(files, addresses)]);

    this.master = startMasterOn(master, files, addresses);
    const token = files.secret('api_tokens').split('\n')[0]?.split(':')[1] ?? '';
    this.api = new MasterApi(`http://${master.address}:8080`, token);
    const api = this.api;
    await this.waitUnlessDead(() => api.ready(), 'the master ready (GET /readyz)');

    for (const [host, machine] of this.hosts) {
      for (const slot of PLACEMENT[host]) {
        const worker = startWorkerOn(machine, slot, files, addresses, {
          ECHO_DELAY_MS: String(this.options.echoDelayMs),
        });
        this.workers.set(`cpu-${slot}`, worker);
      }
    }
    await this.waitUnlessDead(
      async () => {
        const states = await api.workerStates();
        return ALL_WORKERS.every((id) => states[id] === 'online');
      },
      `workers ${ALL_WORKERS.join(', ')} online`,
    );
  }

  host(name: HostName): Machine {
    const machine = this.hosts.get(name);
    if (!machine) throw new Error(`no host ${name}`);
    return machine;
  }

  cut(name: HostName): void {
    this.lab?.cut(this.host(name));
  }

  restore(name: HostName): void {
    this.lab?.restore(this.host(name));
  }

  /**
   * Links back up (so workers can unregister), workers, master, then the
   * servers, each SIGTERM with a SIGKILL after a few seconds; then the
   * namespaces and files. Safe after any failure, and more than once.
   */
  async stop(): Promise<void> {
    const lab = this.lab;
    for (const machine of this.hosts.values()) {
      try {
        lab?.restore(machine);
      } catch {
        // the lab is gone already
      }
    }
    const quietly = (p: FlotaProcess) => p.stop('SIGTERM').catch(() => undefined);
    await Promise.all([...this.workers.values()].map(quietly));
    if (this.master) await quietly(this.master);
    await Promise.all(this.infra.map(quietly));
    lab?.destroy();
    process.off('exit', this.onExit);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  private async waitForBroker(files: StackFiles, addresses: ServiceAddresses): Promise<void> {
    const url = `mqtt://${addresses.mosquitto}:1883`;
    const password = files.secret('mqtt_observer_password');
    await this.waitUnlessDead(
      // The broker binds _observer to this client id (deploy/mosquitto/entrypoint.sh).
      () => brokerAccepts(url, '_observer', password, 'flota-observer'),
      `mosquitto at ${url} to accept _observer`,
    );
  }

  private async waitForRedis(files: StackFiles, addresses: ServiceAddresses): Promise<void> {
    const { QUEUE_URL: url } = resolveServices({ QUEUE_URL: files.secret('queue_url') }, addresses);
    await this.waitUnlessDead(() => redisAnswers(url ?? ''), `redis at ${addresses.redis}`);
  }

  /** Waits for `ready`, failing at once with its output if any process exited meanwhile. */
  private async waitUnlessDead(ready: () => Promise<boolean>, what: string): Promise<void> {
    const outcome = await waitFor(
      async () => {
        for (const p of this.all()) {
          const dead = deadReason(p);
          if (dead) return { dead };
        }
        return (await ready()) ? { ok: true } : undefined;
      },
      { timeoutMs: START_TIMEOUT_MS, intervalMs: 100, what },
    );
    if ('dead' in outcome) throw new Error(outcome.dead);
  }
}
