/**
 * An answer survives the death of its worker: a real master (Redis store,
 * embedded broker, gRPC) gives a lost attempt's streamed text to the next
 * attempt, which continues it on a worker that can (echo) or starts over,
 * announced, on one that cannot. Seen by a Socket.IO session (the browser's
 * protocol) and by a `/v1/chat/completions` stream at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import { loadWorkerConfig, startWorker, type WorkerHandle } from '../../../worker/src/main.ts';
import { createEchoProvider } from '../../../worker/src/providers/echo.ts';
import type { Provider } from '../../../worker/src/providers/index.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { SessionClient } from './session-client.ts';
import { startTestMaster, testLogger } from './support.ts';

/** A slow stream: 4 characters every 25 ms, each piece its own chunk. */
const SLOW_ECHO = {
  ECHO_CHUNK_SIZE: '4',
  ECHO_DELAY_MS: '25',
  CHUNK_COALESCE_MS: '0',
  // Stopping aborts its tasks at once: the attempt dies mid-stream.
  SHUTDOWN_GRACE_MS: '0',
  SLOTS: '4',
};
const words = (n: number, seed: string) =>
  Array.from({ length: n }, (_, i) => `${seed}${i}`).join(' ');

let redis: RedisServer;
let master: MasterHandle;
let session: SessionClient;
const workers: WorkerHandle[] = [];

async function worker(id: string, provider?: Provider): Promise<WorkerHandle> {
  const base = {
    WORKER_ID: id,
    MQTT_URL: master.mqttUrl,
    MASTER_GRPC: `127.0.0.1:${master.grpcPort}`,
    HEARTBEAT_MS: '500',
    ...SLOW_ECHO,
  };
  const token = await master.issueWorkerCredential(id);
  const config = loadWorkerConfig({ ...base, WORKER_TOKEN: token });
  const handle = await startWorker(config, {
    logger: testLogger(id),
    ...(provider && { provider }),
  });
  workers.push(handle);
  return handle;
}

/** An echo that cannot continue an answer (as a provider without prefill). */
function nonContinuingEcho(): Provider {
  const echo = createEchoProvider({ delayMs: 25, chunkSize: 4 });
  return { name: 'echo', generate: (request, onChunk) => echo.generate(request, onChunk) };
}

/** One streamed `/v1/chat/completions` answer, read as it arrives. */
class V1Stream {
  text = '';
  /** Index in `text` where each `flota.restarted` chunk came. */
  restartsAt: number[] = [];
  done = false;
  readonly finished: Promise<void>;

  constructor(url: string, prompt: string) {
    this.finished = this.read(url, prompt);
  }

  private async read(url: string, prompt: string): Promise<void> {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'echo',
        messages: [{ role: 'user', content: prompt }],
        stream: true,
      }),
    });
    expect(response.status).toBe(200);
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const bytes of response.body as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(bytes, { stream: true });
      for (let end = buffered.indexOf('\n\n'); end !== -1; end = buffered.indexOf('\n\n')) {
        const event = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (!event.startsWith('data: ')) continue;
        const data = event.slice(6);
        if (data === '[DONE]') {
          this.done = true;
          continue;
        }
        const chunk = JSON.parse(data) as {
          choices: Array<{ delta: { content?: string } }>;
          flota?: { restarted?: { attempt: number } };
        };
        if (chunk.flota?.restarted) this.restartsAt.push(this.text.length);
        this.text += chunk.choices[0]?.delta.content ?? '';
      }
    }
  }
}

/** The text a session saw stream for one attempt of a task, in chunk order. */
function streamedBy(taskId: string, attempt: number): string {
  return session.accepted
    .filter(
      (e) =>
        e.name === 'task:chunk' && e.payload.taskId === taskId && e.payload.attempt === attempt,
    )
    .sort((a, b) => (a.payload.seq as number) - (b.payload.seq as number))
    .map((e) => e.payload.text as string)
    .join('');
}

function assignedEvent(taskId: string, attempt: number) {
  return session.accepted.find(
    (e) =>
      e.name === 'task:assigned' && e.payload.taskId === taskId && e.payload.attempt === attempt,
  )?.payload;
}

/**
 * One answer asked over the Socket.IO session and one over /v1, both on the
 * worker `first`; resolves once each has streamed 40 characters or more.
 */
async function twoHalfStreamed(seeds: [string, string]) {
  const prompt = words(30, seeds[0]);
  const v1Prompt = words(30, seeds[1]);
  const taskId = await session.submit(prompt);
  const v1 = new V1Stream(master.httpUrl, v1Prompt);
  await waitFor(() => streamedBy(taskId, 1).length >= 40 && v1.text.length >= 40, {
    what: 'both answers half streamed',
  });
  return { taskId, expected: `echo: ${prompt}`, v1, v1Expected: `echo: ${v1Prompt}` };
}

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({ queueUrl: redis.url, env: { TASK_ATTEMPTS: '5' } });
  session = new SessionClient(master.httpUrl, 'continuation-session');
  await waitFor(() => session.epoch !== undefined, { what: 'the session said hello' });
}, 60_000);

afterAll(async () => {
  session?.socket.close();
  await Promise.all(workers.map((w) => w.close()));
  await master?.close();
  await redis?.stop();
});

describe('an answer survives the death of its worker', () => {
  it('continues the streamed text on the next worker: one answer, no repeated prefix', async () => {
    const first = await worker('cont-a');
    await waitFor(async () => (await fetch(`${master.httpUrl}/v1/models`)).ok, {
      what: 'the master answers',
    });
    // Both answers are well under way on the first worker, then it stops mid-stream.
    const { taskId, expected, v1, v1Expected } = await twoHalfStreamed(['alpha', 'beta']);
    await first.close();
    expect(v1.text.length).toBeLessThan(v1Expected.length);
    await worker('cont-b');

    const done = await session.waitTerminal(taskId);
    expect(done.payload).toMatchObject({ state: 'completed', result: expected, attempt: 2 });
    const before = streamedBy(taskId, 1);
    const assigned = assignedEvent(taskId, 2);
    expect(assigned?.workerId).toBe('cont-b');
    // The new attempt carries on from what the session saw, and streams only what follows.
    expect(assigned?.continuesFrom).toBe(before);
    expect(before.length).toBeGreaterThanOrEqual(40);
    expect(`${before}${streamedBy(taskId, 2)}`).toBe(expected);

    await v1.finished;
    expect(v1.done).toBe(true);
    expect(v1.text).toBe(v1Expected);
    expect(v1.restartsAt).toEqual([]);
  });

  it('starts over, announced, where the next worker cannot continue', async () => {
    await Promise.all(workers.splice(0).map((w) => w.close()));
    const first = await worker('cont-c');
    const { taskId, expected, v1, v1Expected } = await twoHalfStreamed(['gamma', 'delta']);
    // Only a worker that cannot continue is left to take them.
    await first.close();
    const sent = v1.text.length;
    await worker('cont-d', nonContinuingEcho());

    const done = await session.waitTerminal(taskId);
    expect(done.payload).toMatchObject({ state: 'completed', result: expected });
    const attempt = done.payload.attempt as number;
    const assigned = assignedEvent(taskId, attempt);
    expect(assigned?.workerId).toBe('cont-d');
    expect(assigned).not.toHaveProperty('continuesFrom');
    expect(streamedBy(taskId, attempt)).toBe(expected);

    await v1.finished;
    expect(v1.done).toBe(true);
    // Told once, where the text starts over; everything after it is the whole answer.
    expect(v1.restartsAt).toEqual([sent]);
    expect(v1.text.slice(sent)).toBe(v1Expected);
  });
});
