/** A real echo worker that counts the prompts it ran, and a token-carrying chat session. */
import { io, type Socket } from 'socket.io-client';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { Ack, HelloReply } from '../../../proto/src/socket-events.ts';
import { loadWorkerConfig, startWorker, type WorkerHandle } from '../../../worker/src/main.ts';
import { createEchoProvider } from '../../../worker/src/providers/echo.ts';
import type { Provider } from '../../../worker/src/providers/types.ts';
import { onTaskEvents } from '../../helpers/task-events.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, testLogger } from './support.ts';

export interface CountingWorker {
  handle: WorkerHandle;
  /** Every prompt this worker's provider ran, in order. */
  runs: string[];
}

export async function startCountingWorker(
  master: MasterHandle,
  workerId: string,
): Promise<CountingWorker> {
  const echo = createEchoProvider({ delayMs: 0, chunkSize: 8 });
  const runs: string[] = [];
  const provider: Provider = {
    name: 'echo',
    generate(request, onChunk) {
      runs.push(request.prompt);
      return echo.generate(request, onChunk);
    },
  };
  const config = loadWorkerConfig({
    MQTT_URL: master.mqttUrl,
    MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
    HEARTBEAT_MS: '500',
    WORKER_ID: workerId,
    WORKER_TOKEN: await master.issueWorkerCredential(workerId),
  });
  const handle = await startWorker(config, { logger: testLogger(workerId), provider });
  return { handle, runs };
}

/** Waits until the master lists the worker online. */
export function waitOnline(
  master: MasterHandle,
  workerId: string,
  headers: Record<string, string> = {},
) {
  return waitFor(
    async () => {
      const { body } = await api<{ workers: { id: string; state: string }[] }>(
        master,
        '/api/workers',
        { headers },
      );
      return body.workers?.some((w) => w.id === workerId && w.state === 'online');
    },
    { what: `${workerId} online` },
  );
}

/** Submits over REST and waits for the task to finish; resolves with its final view. */
export async function runTask(
  master: MasterHandle,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<TaskView> {
  const posted = await api<{ id: string }>(master, '/api/tasks', { body, headers });
  if (posted.status !== 202) throw new Error(`submit answered ${posted.status}`);
  return waitFor(
    async () => {
      const { body: view } = await api<TaskView>(master, `/api/tasks/${posted.body.id}`, {
        headers,
      });
      return view.state === 'completed' || view.state === 'failed' ? view : undefined;
    },
    { what: `task ${posted.body.id} to finish` },
  );
}

export interface ReceivedEvent {
  name: string;
  payload: { taskId?: string; id?: string } & Record<string, unknown>;
}

/** A chat session that connects with `auth: { token }`, like the web UI with a token set. */
export class TokenSession {
  readonly socket: Socket;
  readonly events: ReceivedEvent[] = [];

  constructor(url: string, token: string | undefined) {
    this.socket = io(url, {
      transports: ['websocket'],
      reconnection: false,
      ...(token === undefined ? {} : { auth: { token } }),
    });
    const kept = new Set(['task:queued', 'task:assigned', 'task:completed', 'task:failed']);
    onTaskEvents(this.socket, (name, payload) => {
      if (!kept.has(name)) return;
      this.events.push({ name, payload: payload as unknown as ReceivedEvent['payload'] });
      this.socket.emit('session:ack', { seq: payload.outboxSeq });
    });
  }

  /** Resolves once connected; rejects with the server's reason when refused. */
  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.socket.connected) return resolve();
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', (err) => reject(err));
    });
  }

  async hello(sessionId: string): Promise<Ack<HelloReply>> {
    return this.socket.timeout(10_000).emitWithAck('session:hello', { sessionId });
  }

  async submit(payload: Record<string, unknown>): Promise<string> {
    const reply: Ack<{ taskId: string }> = await this.socket
      .timeout(10_000)
      .emitWithAck('task:submit', payload);
    if (!reply.ok) throw new Error(reply.error);
    return reply.taskId;
  }

  /** Events about one task, in arrival order. */
  of(taskId: string): ReceivedEvent[] {
    return this.events.filter((e) => (e.payload.taskId ?? e.payload.id) === taskId);
  }

  finished(taskId: string): Promise<ReceivedEvent> {
    return waitFor(
      () => this.of(taskId).find((e) => e.name === 'task:completed' || e.name === 'task:failed'),
      { what: `the end of ${taskId}` },
    );
  }

  close(): void {
    this.socket.close();
  }
}
