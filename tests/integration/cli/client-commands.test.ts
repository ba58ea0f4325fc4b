/**
 * `flota submit` and `flota workers` as a terminal runs them (`node
 * bin/flota.mjs`), against a real master with API tokens and a result cache,
 * a real Redis and a real echo worker carrying a label.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitOnline } from '../master/cache-support.ts';
import { startTestMaster, startTestWorker } from '../master/support.ts';
import { asJson, type Run, runFlotaAt } from './run-flota.ts';

const TOKEN = 'cli-token-0123456789';

let redis: RedisServer;
let master: MasterHandle;
let worker: WorkerHandle;

/** Runs the CLI against this file's master, with only the environment given. */
const flota = (args: string[], env: Record<string, string> = {}): Promise<Run> =>
  runFlotaAt(master.httpUrl, args, env);

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: { API_TOKENS: `cli:${TOKEN}`, CACHE_TTL_S: '300' },
  });
  worker = await startTestWorker(master, {
    WORKER_ID: 'cli-w1',
    LABELS: 'region=eu',
    ECHO_DELAY_MS: '0',
  });
  await waitOnline(master, 'cli-w1', { authorization: `Bearer ${TOKEN}` });
});

afterAll(async () => {
  await worker?.close();
  await master?.close();
  await redis?.stop();
});

describe('flota submit', () => {
  it('sends priority, labels, timeout and idempotency key with the token, and waits for the answer', async () => {
    const args = ['submit', '--json', '--token', TOKEN, '-p', '700', '--label', 'region=eu'];
    args.push('--timeout-ms', '30000', '--idempotency-key', 'cli-key-1', 'Hello', 'CLI');
    const task = asJson<TaskView>(await flota(args));
    expect(task).toMatchObject({
      state: 'completed',
      priority: 700,
      requires: { labels: { region: 'eu' } },
      workerId: 'cli-w1',
    });
    expect(task.result).toContain('Hello CLI');

    // The same key names the same task.
    const again = asJson<TaskView>(await flota(args));
    expect(again.id).toBe(task.id);
  });

  it('takes the token from FLOTA_TOKEN and prints the answer with where it came from', async () => {
    const run = await flota(['submit', '--priority', '5', 'Plain', 'text'], {
      FLOTA_TOKEN: TOKEN,
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Plain text');
    expect(run.stderr).toMatch(/cli-w1 \(cpu\) · echo · priority 5 ·/);
  });

  it('answers from the result cache unless --no-cache says otherwise', async () => {
    const auth = { FLOTA_TOKEN: TOKEN };
    const first = asJson<TaskView>(await flota(['submit', '--json', 'Cache me'], auth));
    expect(first.cache).toBeUndefined();
    const hit = asJson<TaskView>(await flota(['submit', '--json', 'Cache me'], auth));
    expect(hit).toMatchObject({ state: 'completed', result: first.result, cache: { hit: true } });
    expect(hit.workerId).toBeUndefined();

    const fresh = asJson<TaskView>(
      await flota(['submit', '--json', '--no-cache', 'Cache me'], auth),
    );
    expect(fresh.cache).toBeUndefined();
    expect(fresh.workerId).toBe('cli-w1');
  });

  it('is refused without a token, with a hint', async () => {
    const run = await flota(['submit', 'No token']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('401 this API needs a token');
    expect(run.stderr).toContain('pass --token or set FLOTA_TOKEN');
  });

  it('names the option that is wrong, before sending anything', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--priority', '1001'], /--priority: .*1000/],
      [['--priority', 'high'], /--priority <n>' argument 'high' is invalid/],
      [['--timeout-ms', '5'], /--timeout-ms: .*1000/],
      [['--label', 'region'], /expected key=value/],
      [['--label', 'a=1', '--label', 'a=2'], /label "a" is given twice/],
      [['--token', ''], /--token: must not be empty/],
      [['--url', 'ftp://example.org'], /--url: expected an http/],
    ];
    // One at a time: each is a whole Node process, and the machine may be small.
    for (const [args, message] of cases) {
      const run = await flota(['submit', ...args, 'prompt'], { FLOTA_TOKEN: TOKEN });
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.stderr).toMatch(message);
    }
  });
});

describe('flota workers', () => {
  it('lists the workers with --token, and is refused without one', async () => {
    const workers = asJson<WorkerView[]>(await flota(['workers', '--json', '--token', TOKEN]));
    expect(workers).toEqual([
      expect.objectContaining({ id: 'cli-w1', state: 'online', labels: { region: 'eu' } }),
    ]);
    const table = await flota(['workers'], { FLOTA_TOKEN: TOKEN });
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('cli-w1');

    const refused = await flota(['workers']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('401');
  });
});
