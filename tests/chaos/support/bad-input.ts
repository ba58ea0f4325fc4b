/**
 * Bad input at every boundary while the chaos runs: malformed Socket.IO
 * events, bad REST bodies, junk MQTT on worker topics and a well-formed
 * assignment for a task nobody owns, sent anonymously and again by a worker
 * logged in with its own credential (an insider acting as someone else, or
 * as the master). Each must be refused or dropped; none may crash a process
 * (the run checks every process's output and exit).
 */
import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import { io } from 'socket.io-client';
import { createTopics, workerClientId } from '../../../proto/src/topics.ts';

/** A worker id and its own credential, as the master issued them. */
export interface WorkerLogin {
  id: string;
  credential: string;
}

export interface BadInputReport {
  sent: number;
  /** Answers that were not a refusal (a 5xx, an ok: true, no answer at all). */
  unexpected: string[];
}

const hex32 = () => randomBytes(16).toString('hex');

/** Every probe group must finish within this, whatever the servers do. */
const PROBES_TIMEOUT_MS = 30_000;

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

async function restProbes(baseUrl: string, report: BadInputReport): Promise<void> {
  const probes: Array<[string, RequestInit & { path: string }]> = [
    ['not JSON', { path: '/api/tasks', method: 'POST', body: '{"prompt": ' }],
    ['prompt is a number', { path: '/api/tasks', method: 'POST', body: '{"prompt": 7}' }],
    ['empty object', { path: '/api/tasks', method: 'POST', body: '{}' }],
    ['unknown field', { path: '/api/tasks', method: 'POST', body: '{"prompt":"x","evil":1}' }],
    ['2 MB body', { path: '/api/tasks', method: 'POST', body: `{"prompt":"${'x'.repeat(2e6)}"}` }],
    ['unknown task', { path: `/api/tasks/any.echo.${hex32()}`, method: 'GET' }],
    ['absurd task id', { path: `/api/tasks/${'%00'.repeat(200)}`, method: 'GET' }],
  ];
  for (const [what, { path, ...init }] of probes) {
    report.sent++;
    try {
      const res = await fetch(`${baseUrl}${path}`, {
        ...init,
        headers: { 'content-type': 'application/json' },
        signal: AbortSignal.timeout(5_000),
      });
      await res.arrayBuffer();
      if (res.status < 400 || res.status >= 500) {
        report.unexpected.push(`REST ${what}: HTTP ${res.status}`);
      }
    } catch (err) {
      report.unexpected.push(`REST ${what}: ${(err as Error).message}`);
    }
  }
}

async function socketProbes(baseUrl: string, report: BadInputReport): Promise<void> {
  const socket = io(baseUrl, { transports: ['websocket'], reconnection: false, timeout: 5_000 });
  const emit = socket.emit.bind(socket) as (name: string, ...args: unknown[]) => void;
  const ask = async (what: string, name: string, payload: unknown) => {
    report.sent++;
    try {
      const reply = (await socket.timeout(5_000).emitWithAck(name as never, payload as never)) as {
        ok?: unknown;
      };
      if (reply?.ok !== false) report.unexpected.push(`socket ${what}: ${JSON.stringify(reply)}`);
    } catch (err) {
      report.unexpected.push(`socket ${what}: ${(err as Error).message}`);
    }
  };
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', reject);
      }),
      5_000,
      'socket connect',
    );
    await ask('submit before hello', 'task:submit', { prompt: 'too early' });
    await ask('hello with junk', 'session:hello', 'junk');
    await ask('hello with a short id', 'session:hello', { sessionId: 'x' });
    await ask('hello with a huge pending list', 'session:hello', {
      sessionId: `chaos-bad-${hex32()}`,
      pending: Array.from({ length: 5_000 }, () => `any.echo.${hex32()}`),
    });
    const hello = (await socket.timeout(5_000).emitWithAck(
      'session:hello' as never,
      {
        sessionId: `chaos-bad-${hex32()}`,
      } as never,
    )) as { ok?: boolean };
    if (!hello?.ok) report.unexpected.push(`socket valid hello refused: ${JSON.stringify(hello)}`);
    await ask('prompt is a number', 'task:submit', { prompt: 42 });
    await ask('empty prompt', 'task:submit', { prompt: '   ' });
    await ask('priority out of range', 'task:submit', { prompt: 'x', priority: 5_000 });
    await ask('unknown field', 'task:submit', { prompt: 'x', evil: true });
    await ask('prompt too long', 'task:submit', { prompt: 'y'.repeat(150_000) });
    await ask('cancel with a number', 'task:cancel', { taskId: 12 });
    await ask('cancel of an unknown task', 'task:cancel', { taskId: `any.echo.${hex32()}` });
    // No ack callback, or no handler at all: must simply be dropped.
    report.sent += 4;
    emit('session:ack', 'junk');
    emit('session:ack', { seq: -5 });
    emit('task:submit', { prompt: 5 });
    emit('no:such-event', { boom: true });
  } catch (err) {
    report.unexpected.push(`socket probe: ${(err as Error).message}`);
  } finally {
    socket.close();
  }
}

/**
 * Publishes once on a fresh connection, anonymously or as `as`. An open
 * broker accepts it (the flota process on that topic must drop it); the
 * embedded broker refuses it and closes the connection (only the master may
 * publish a worker's tasks or control, a worker only its own status and
 * heartbeat, and nobody anonymous anything). Either is a refusal; no answer
 * at all is not.
 */
async function publishOnce(
  mqttPort: number,
  topic: string,
  payload: string | Buffer,
  as?: WorkerLogin,
) {
  const login = as
    ? { clientId: workerClientId(as.id), username: as.id, password: as.credential }
    : { clientId: `chaos-bad-${hex32().slice(0, 8)}` };
  const client = mqtt.connect(`mqtt://127.0.0.1:${mqttPort}`, {
    ...login,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
  });
  client.on('error', () => undefined);
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('close', () => reject(new Error('connection closed before CONNACK')));
      }),
      5_000,
      'mqtt connect',
    );
    await withTimeout(
      new Promise<'accepted' | 'cut'>((resolve) => {
        client.once('close', () => resolve('cut'));
        client.publish(topic, payload, { qos: 1 }, (err) => {
          if (!err) resolve('accepted');
        });
      }),
      5_000,
      `publish ${topic}`,
    );
  } finally {
    client.end(true);
  }
}

async function mqttProbes(
  mqttPort: number,
  workerId: string,
  report: BadInputReport,
  as?: WorkerLogin,
) {
  const fakeAssignment = {
    taskId: `any.echo.${hex32()}`,
    attempt: 1,
    lease: hex32(),
    model: 'echo',
    prompt: 'a task nobody assigned',
    params: {},
    deadline: Date.now() + 30_000,
    queuedAt: Date.now(),
  };
  const topics = createTopics();
  const ghost = `ghost-${hex32().slice(0, 6)}`;
  const messages: Array<[string, string | Buffer]> = [
    [topics.tasks(workerId), 'not json'],
    [topics.tasks(workerId), JSON.stringify({ taskId: 5 })],
    [topics.tasks(workerId), JSON.stringify(fakeAssignment)],
    [topics.control(workerId), JSON.stringify({ type: 'explode' })],
    [topics.control(workerId), JSON.stringify({ type: 'cancel', taskId: `any.echo.${hex32()}` })],
    [topics.heartbeat(workerId), JSON.stringify({ id: workerId, cpuPct: 'lots' })],
    [topics.status(ghost), '{"state":"online","id":"someone-else"}'],
    [topics.heartbeat(ghost), Buffer.alloc(1_200_000, 0x7b)],
    [`${topics.prefix}/workers/a/b/c/status`, 'deep'],
  ];
  if (as) {
    // An insider's own topics, where only the master may speak, and a heartbeat as its victim.
    messages.push(
      [topics.tasks(as.id), JSON.stringify({ ...fakeAssignment, taskId: `any.echo.${hex32()}` })],
      [topics.control(as.id), JSON.stringify({ type: 'drain' })],
      [topics.heartbeat(workerId), JSON.stringify({ id: workerId, ts: Date.now() })],
    );
  }
  for (const [topic, payload] of messages) {
    report.sent++;
    try {
      await publishOnce(mqttPort, topic, payload, as);
    } catch (err) {
      report.unexpected.push(`mqtt probe: ${(err as Error).message}`);
    }
  }
}

/**
 * Sends every probe once (the MQTT ones anonymously, then again as the
 * `insider` worker, aimed at `workerId`); resolves with what was not refused
 * the way it should be.
 */
export async function sendBadInput(
  baseUrl: string,
  mqttPort: number,
  workerId: string,
  insider: WorkerLogin,
): Promise<BadInputReport> {
  const report: BadInputReport = { sent: 0, unexpected: [] };
  const groups: Array<[string, Promise<void>]> = [
    ['REST', restProbes(baseUrl, report)],
    ['Socket.IO', socketProbes(baseUrl, report)],
    ['MQTT', mqttProbes(mqttPort, workerId, report)],
    ['MQTT as a worker', mqttProbes(mqttPort, workerId, report, insider)],
  ];
  await Promise.all(
    groups.map(([what, work]) =>
      withTimeout(work, PROBES_TIMEOUT_MS, `${what} probes`).catch((err: Error) => {
        report.unexpected.push(err.message);
      }),
    ),
  );
  return report;
}
