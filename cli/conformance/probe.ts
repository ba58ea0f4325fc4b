/**
 * The kit's eyes on the broker: an MQTT client with the master's login that
 * records every status record and heartbeat a worker publishes, parsed with
 * the schemas of proto/, and publishes on a worker's tasks and control topics
 * as the master would. Records are kept with the time they arrived, so a
 * check can wait for one, or read what came within a window.
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { z } from 'zod';
import { connectMqtt, waitConnected } from '../../common/mqtt.ts';
import {
  type Heartbeat,
  heartbeatSchema,
  type WorkerStatus,
  workerStatusSchema,
} from '../../proto/src/schemas/worker.ts';
import type { Topics } from '../../proto/src/topics.ts';

export interface Seen<T> {
  at: number;
  /** The parsed message, or undefined when it failed its schema. */
  value: T | undefined;
  /** Why it failed its schema (or did not name its topic's worker). */
  problem?: string;
  retained: boolean;
}

export interface ProbeOptions {
  url: string;
  username: string;
  password: string;
  topics: Topics;
  log: Logger;
}

type Listener = () => void;

const masterLogLineSchema = z.looseObject({
  msg: z.string(),
  taskId: z.string().optional(),
  workerId: z.string().optional(),
  reason: z.string().optional(),
});
export type MasterLogLine = z.infer<typeof masterLogLineSchema>;

export class Probe {
  readonly statuses = new Map<string, Seen<WorkerStatus>[]>();
  readonly heartbeats = new Map<string, Seen<Heartbeat>[]>();
  private readonly listeners = new Set<Listener>();
  /** How many times it has logged in to the broker (a restarted broker makes it log in again). */
  logins = 0;

  private constructor(
    private readonly client: MqttClient,
    private readonly topics: Topics,
  ) {}

  static async connect(options: ProbeOptions): Promise<Probe> {
    const client = connectMqtt(options.url, {
      clientId: `flota-master-probe${Math.random().toString(16).slice(2, 8)}`,
      username: options.username,
      password: options.password,
    });
    client.on('error', (err) => options.log.debug({ err: err.message }, 'probe mqtt error'));
    const probe = new Probe(client, options.topics);
    client.on('message', (topic, payload, packet) => probe.record(topic, payload, packet.retain));
    client.on('connect', () => {
      probe.logins += 1;
      probe.poke();
    });
    await waitConnected(client, options.url);
    const logs = options.topics.log('master');
    await client.subscribeAsync(
      [options.topics.allStatus(), options.topics.allHeartbeats(), logs],
      {
        qos: 1,
      },
    );
    return probe;
  }

  private record(topic: string, payload: Buffer, retained: boolean): void {
    if (topic === this.topics.log('master')) {
      this.recordMasterLog(payload);
      return;
    }
    const where = this.topics.parseWorkerTopic(topic);
    if (!where || payload.length === 0) return;
    if (where.kind !== 'status' && where.kind !== 'heartbeat') return;
    const schema = where.kind === 'status' ? workerStatusSchema : heartbeatSchema;
    let seen: Seen<WorkerStatus | Heartbeat>;
    try {
      const parsed = schema.safeParse(JSON.parse(payload.toString('utf8')));
      seen = parsed.success
        ? parsed.data.id === where.workerId
          ? { at: Date.now(), value: parsed.data, retained }
          : {
              at: Date.now(),
              value: undefined,
              problem: `its id ${JSON.stringify(parsed.data.id)} is not the topic's`,
              retained,
            }
        : { at: Date.now(), value: undefined, problem: parsed.error.message, retained };
    } catch {
      seen = { at: Date.now(), value: undefined, problem: 'not JSON', retained };
    }
    const book: Map<string, Seen<WorkerStatus | Heartbeat>[]> =
      where.kind === 'status' ? this.statuses : this.heartbeats;
    const list = book.get(where.workerId) ?? [];
    list.push(seen);
    book.set(where.workerId, list);
    for (const listener of this.listeners) listener();
  }

  /** The master's log lines that concern a task (what it says of the worker's reports). */
  readonly masterLog: Array<{ at: number; line: MasterLogLine }> = [];

  private recordMasterLog(payload: Buffer): void {
    try {
      const parsed = masterLogLineSchema.safeParse(JSON.parse(payload.toString('utf8')));
      if (!parsed.success || parsed.data.taskId === undefined) return;
      this.masterLog.push({ at: Date.now(), line: parsed.data });
      for (const listener of this.listeners) listener();
    } catch {
      // Not a JSON line: not one the checks read.
    }
  }

  /**
   * Resolves once it has logged in more than `logins` times: the broker went
   * away and it is back (mqtt.js then subscribes again to what it had).
   * Rejects after `ms`.
   */
  async reconnected(logins: number, ms = 10_000): Promise<void> {
    const back = await this.until(() => this.logins > logins, ms);
    if (!back)
      throw new Error(`the kit's probe did not log in to the broker again within ${ms} ms`);
  }

  /** Asks every waiter again: something it watches changed outside MQTT (a refused login). */
  poke(): void {
    for (const listener of this.listeners) listener();
  }

  statusesOf(workerId: string): Seen<WorkerStatus>[] {
    return this.statuses.get(workerId) ?? [];
  }

  heartbeatsOf(workerId: string): Seen<Heartbeat>[] {
    return this.heartbeats.get(workerId) ?? [];
  }

  /**
   * Resolves with the first truthy value of `probe()`, asked now and after
   * every message; undefined when `ms` pass first.
   */
  until<T>(probe: () => T | undefined | false, ms: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      const now = probe();
      if (now) return resolve(now);
      const done = (value: T | undefined) => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(value);
      };
      const listener = () => {
        const value = probe();
        if (value) done(value);
      };
      // A waiter the run gave up on (it raced another) must not hold the process open.
      const timer = setTimeout(() => done(undefined), ms).unref();
      this.listeners.add(listener);
    });
  }

  /**
   * Subscribes again to one worker's status topic, so the broker sends its
   * retained record anew (with the retain flag): proof it was retained.
   */
  async refreshRetained(workerId: string): Promise<void> {
    const topic = this.topics.status(workerId);
    await this.client.unsubscribeAsync(topic);
    await this.client.subscribeAsync(topic, { qos: 1 });
  }

  /** Publishes raw bytes (or JSON) on a worker's tasks or control topic, QoS 1. */
  async publish(
    workerId: string,
    kind: 'tasks' | 'control',
    payload: string | Buffer | object,
  ): Promise<void> {
    const topic = kind === 'tasks' ? this.topics.tasks(workerId) : this.topics.control(workerId);
    const body =
      typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
    await this.client.publishAsync(topic, body, { qos: 1 });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
