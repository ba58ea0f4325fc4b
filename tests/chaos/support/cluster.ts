/**
 * The system under test, as processes: `flota master` and N `flota worker`s,
 * plus (in redis mode) Redis with an append-only file and Mosquitto. Every
 * role can be killed and started again with the same environment and ports;
 * a worker keeps the credential it was issued once, as a deployed one keeps
 * its WORKER_TOKEN (the master's secret lives in its data directory, so the
 * credential outlives a master restart).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueWorkerCredential } from '../../../cli/token.ts';
import { waitForSystem } from '../../e2e/support/api.ts';
import { spawnFlota } from '../../e2e/support/flota-process.ts';
import { deadReason } from '../../e2e/support/system.ts';
import { type DurableRedis, startDurableRedis } from '../../helpers/durable-redis.ts';
import { freePort } from '../../helpers/free-port.ts';
import { type MosquittoServer, startMosquitto } from '../../helpers/mosquitto-server.ts';
import { randomName } from '../../helpers/random-name.ts';
import type { WorkerLogin } from './bad-input.ts';
import type { ChaosSettings } from './config.ts';
import type { ProcessBook, TrackedProcess } from './process-book.ts';

/**
 * `redis`: Redis and Mosquitto, every fault. `embedded`: the master's own
 * broker and PostgreSQL. `streaming`: Redis and Mosquitto, long answers and
 * worker faults only, so attempts die mid-stream and the next one continues.
 */
export type ChaosMode = 'redis' | 'embedded' | 'streaming';

/** Characters per streamed echo chunk; the client checks each chunk against its prompt. */
export const ECHO_CHUNK_SIZE = 16;
/** Attempts per task: kills every 2 s may hit one task a few times. */
const TASK_ATTEMPTS = 8;
/** Longer than the whole run: a task still open at the end is reported lost, not timed out. */
const TASK_TIMEOUT_MS = 120_000;
const WORKER_SHUTDOWN_GRACE_MS = 3_000;
const READY_TIMEOUT_MS = 60_000;

export class ChaosCluster {
  redis: DurableRedis | undefined;
  mosquitto: MosquittoServer | undefined;
  master: TrackedProcess | undefined;
  readonly workers = new Map<string, TrackedProcess>();
  readonly workerIds: string[];
  readonly paused = new Set<string>();
  /** Each worker's own credential (its WORKER_TOKEN), issued once by the master. */
  private readonly credentials = new Map<string, string>();
  /** A credential for no running worker: the bad-input probes log in with it as an insider. */
  insider: WorkerLogin | undefined;
  private dataDir = '';
  private ports = { http: 0, grpc: 0, mqtt: 0 };
  private readonly namespace = randomName('chaos');
  /** Set by stop(): a fault still running (after a timeout) must not start new processes. */
  private stopping = false;

  constructor(
    readonly mode: ChaosMode,
    private readonly settings: ChaosSettings,
    private readonly book: ProcessBook,
  ) {
    this.workerIds = Array.from({ length: settings.workers }, (_, i) => `chaos-w${i + 1}`);
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.ports.http}`;
  }

  /** The broker's port, for clients that inject traffic (Mosquitto's, or the embedded one). */
  get mqttPort(): number {
    return this.mosquitto?.port ?? this.ports.mqtt;
  }

  async start(): Promise<void> {
    this.dataDir = await mkdtemp(join(tmpdir(), `flota-chaos-${this.mode}-`));
    if (this.mode !== 'embedded') {
      [this.redis, this.mosquitto] = await Promise.all([startDurableRedis(), startMosquitto()]);
    }
    this.ports = { http: await freePort(), grpc: await freePort(), mqtt: await freePort() };
    await this.startMaster();
    // A loopback master without API_TOKENS issues credentials without an admin token.
    for (const id of this.workerIds) {
      this.credentials.set(id, await issueWorkerCredential({ url: this.baseUrl }, id));
    }
    const insiderId = 'chaos-insider';
    this.insider = {
      id: insiderId,
      credential: await issueWorkerCredential({ url: this.baseUrl }, insiderId),
    };
    for (const id of this.workerIds) this.startWorker(id);
    await waitForSystem(
      this.baseUrl,
      this.workerIds,
      () => this.deadWhileStarting(),
      READY_TIMEOUT_MS,
    );
  }

  /** Starts the master (again) on the same ports and data; resolves once /readyz answers 200. */
  async startMaster(): Promise<TrackedProcess> {
    if (this.stopping) throw new Error('the cluster is stopping');
    const env: Record<string, string> = {
      HOST: '127.0.0.1',
      PORT: String(this.ports.http),
      GRPC_PORT: String(this.ports.grpc),
      QUEUE_NAMESPACE: this.namespace,
      FLOTA_DATA_DIR: this.dataDir,
      TASK_ATTEMPTS: String(TASK_ATTEMPTS),
      TASK_TIMEOUT_MS: String(TASK_TIMEOUT_MS),
      LOG_LEVEL: 'info',
      // A thousand submissions a run from one address: the suite tests faults, not the rate limit.
      RATE_LIMIT_RPM: '0',
    };
    if (this.redis && this.mosquitto) {
      env.QUEUE_URL = this.redis.url;
      env.MQTT_URL = this.mosquitto.url;
    } else {
      env.MQTT_PORT = String(this.ports.mqtt);
    }
    const proc = spawnFlota({ name: 'flota master', args: ['master'], env });
    const master = this.book.track('master', 'master', proc);
    this.master = master;
    await waitForSystem(this.baseUrl, [], () => deadReason(proc), READY_TIMEOUT_MS);
    return master;
  }

  /** SIGKILL to the master process itself (its embedded PostgreSQL, if any, is left behind). */
  killMaster(): void {
    const master = this.master;
    if (!master) return;
    master.killedOnPurpose = true;
    master.process.child.kill('SIGKILL');
  }

  /** Starts a worker process with this id; does not wait for it. */
  startWorker(id: string): TrackedProcess | undefined {
    if (this.stopping) return undefined;
    const credential = this.credentials.get(id);
    if (!credential) throw new Error(`worker ${id} was issued no credential`);
    const mqttUrl = this.mosquitto?.url ?? `mqtt://127.0.0.1:${this.ports.mqtt}`;
    const proc = spawnFlota({
      name: `flota worker ${id}`,
      args: ['worker'],
      env: {
        WORKER_ID: id,
        WORKER_TOKEN: credential,
        MQTT_URL: mqttUrl,
        MASTER_GRPC: `127.0.0.1:${this.ports.grpc}`,
        SLOTS: String(this.settings.slots),
        PROVIDER: 'echo',
        ECHO_DELAY_MS: String(this.settings.echoDelayMs),
        ECHO_DELAY_JITTER_MS: String(this.settings.echoJitterMs),
        ECHO_CHUNK_SIZE: String(ECHO_CHUNK_SIZE),
        SHUTDOWN_GRACE_MS: String(WORKER_SHUTDOWN_GRACE_MS),
        HEARTBEAT_MS: '1000',
        LOG_LEVEL: 'info',
      },
    });
    const worker = this.book.track('worker', id, proc);
    this.workers.set(id, worker);
    return worker;
  }

  /** SIGKILL to the worker's process group. */
  killWorker(id: string): void {
    const worker = this.workers.get(id);
    if (!worker) return;
    worker.killedOnPurpose = true;
    worker.process.signalGroup('SIGKILL');
  }

  pauseWorker(id: string): void {
    this.paused.add(id);
    this.workers.get(id)?.process.signalGroup('SIGSTOP');
  }

  resumeWorker(id: string): void {
    this.workers.get(id)?.process.signalGroup('SIGCONT');
    this.paused.delete(id);
  }

  /** Workers running now and not paused. */
  liveWorkers(): string[] {
    return this.workerIds.filter((id) => {
      const w = this.workers.get(id);
      return w && !w.process.hasExited() && !this.paused.has(id);
    });
  }

  /**
   * Stops everything: workers first (SIGTERM, so they report what they hold),
   * then the master, then Redis and Mosquitto; removes the data directory.
   * Safe to call after a failure, and more than once.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const id of [...this.paused]) this.resumeWorker(id);
    const alive = (p: TrackedProcess) => !p.process.hasExited();
    const stopping = (p: TrackedProcess) => {
      if (alive(p)) p.stopRequested = true;
      return p.process.stop(p.killedOnPurpose ? 'SIGKILL' : 'SIGTERM').catch(() => undefined);
    };
    const workers = this.book.all.filter((p) => p.role === 'worker');
    await Promise.all(workers.map(stopping));
    const masters = this.book.all.filter((p) => p.role === 'master');
    await Promise.all(masters.map(stopping));
    await Promise.all([this.redis?.stop(), this.mosquitto?.stop()]);
    if (this.dataDir) await rm(this.dataDir, { recursive: true, force: true });
  }

  private deadWhileStarting(): string | undefined {
    if (this.master) {
      const dead = deadReason(this.master.process);
      if (dead) return dead;
    }
    for (const w of this.workers.values()) {
      const dead = deadReason(w.process);
      if (dead) return dead;
    }
    return undefined;
  }
}
