/**
 * Shared by the bad-input suites: a tap on the MQTT log topic (every flota
 * process republishes its log lines there), a trap for uncaught errors in this
 * process (where the master and worker run), and small waits.
 */
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import type { MasterHandle } from '../../../master/src/main.ts';
import { type LogLine, logLineSchema } from '../../../proto/src/schemas/log.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import { createTopics, workerClientId } from '../../../proto/src/topics.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api } from './support.ts';

export const topics = createTopics();

/** A log line with the fields flota's drop messages carry. */
export type TappedLine = LogLine & { topic?: string; bytes?: number; reason?: string };

export interface LogTap {
  readonly lines: TappedLine[];
  /** Resolves with the first line (seen so far or later) that matches. */
  waitForLine(match: (line: TappedLine) => boolean, what: string): Promise<TappedLine>;
  close(): Promise<void>;
}

/** Subscribes to `flota/v1/logs/#`; anything that is not a flota log line is ignored. */
export async function tapLogs(mqttUrl: string): Promise<LogTap> {
  const client = await mqtt.connectAsync(mqttUrl, { clientId: `log-tap-${randomUUID()}` });
  const lines: TappedLine[] = [];
  client.on('message', (_topic, payload) => {
    try {
      const parsed = logLineSchema.safeParse(JSON.parse(payload.toString('utf8')));
      if (parsed.success) lines.push(parsed.data as TappedLine);
    } catch {
      // Not JSON: the suites publish such garbage on the log topic themselves.
    }
  });
  await client.subscribeAsync(topics.allLogs(), { qos: 0 });
  return {
    lines,
    waitForLine: (match, what) =>
      waitFor(() => lines.find(match), { what: `log line: ${what}`, timeoutMs: 10_000 }),
    close: () => client.endAsync(),
  };
}

export interface ErrorTrap {
  /** Every uncaught exception and unhandled rejection seen since the trap was set. */
  readonly errors: unknown[];
  dispose(): void;
}

/** The master and worker run in this process: anything they fail to catch lands here. */
export function trapProcessErrors(): ErrorTrap {
  const errors: unknown[] = [];
  const onError = (err: unknown) => errors.push(err);
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  return {
    errors,
    dispose() {
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onError);
    },
  };
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export function waitForTask(master: MasterHandle, id: string): Promise<TaskView> {
  return waitFor(
    async () => {
      const { body } = await api<TaskView>(master, `/api/tasks/${id}`);
      return TERMINAL.has(body.state) ? body : undefined;
    },
    { timeoutMs: 20_000, what: `task ${id} to finish` },
  );
}

/** Submits over REST and waits for the answer: the proof that the system still works. */
export async function runTask(master: MasterHandle, prompt: string): Promise<TaskView> {
  const { status, body } = await api<{ id: string }>(master, '/api/tasks', { body: { prompt } });
  if (status !== 202) throw new Error(`submit answered ${status}: ${JSON.stringify(body)}`);
  return waitForTask(master, body.id);
}

/**
 * Publishes once (QoS 1) on a fresh connection: anonymous, or logged in as
 * worker `as` with a credential of its own (a worker may send garbage on its
 * own topics). 'accepted' on PUBACK; 'cut' when the broker closed the
 * connection instead (a refused publish or an oversized packet).
 */
export async function sendOnce(
  master: MasterHandle,
  topic: string,
  payload: Buffer,
  as?: string,
): Promise<'accepted' | 'cut'> {
  const login = as
    ? {
        clientId: workerClientId(as),
        username: as,
        password: await master.issueWorkerCredential(as),
      }
    : { clientId: `rogue-${randomUUID()}` };
  const client = await mqtt.connectAsync(master.mqttUrl, { ...login, reconnectPeriod: 0 });
  client.on('error', () => undefined);
  try {
    return await new Promise<'accepted' | 'cut'>((resolve) => {
      client.once('close', () => resolve('cut'));
      client.publish(topic, payload, { qos: 1 }, (err) => {
        if (!err) resolve('accepted');
      });
    });
  } finally {
    await client.endAsync(true);
  }
}
