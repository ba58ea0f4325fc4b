/**
 * `flota token worker|join|revoke` as a terminal runs them (`node
 * bin/flota.mjs`), against a real master with an admin and a user token: the
 * credential it prints lets a real worker in, a revoked one no longer does,
 * and a user token, no token or no master each get a message saying what to do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type {
  CredentialResponse,
  JoinTokenResponse,
  RevokeResponse,
} from '../../../proto/src/schemas/admin.ts';
import type { WorkerView } from '../../../proto/src/schemas/worker.ts';
import type { WorkerHandle } from '../../../worker/src/main.ts';
import { freePort } from '../../helpers/free-port.ts';
import { type RedisServer, startRedis } from '../../helpers/redis-server.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster, startTestWorker } from '../master/support.ts';
import { asJson, type Run, runFlotaAt } from './run-flota.ts';

const ADMIN = 'token-admin-0123456789';
const USER = 'token-user-0123456789';

let redis: RedisServer;
let master: MasterHandle;
const workers: WorkerHandle[] = [];

/** Runs the CLI against this file's master, with only the environment given. */
const flota = (args: string[], env: Record<string, string> = {}): Promise<Run> =>
  runFlotaAt(master.httpUrl, args, env);

const workerState = async (id: string) => {
  const { body } = await api<{ workers: WorkerView[] }>(master, '/api/workers', {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  return body.workers.find((w) => w.id === id)?.state;
};

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({
    queueUrl: redis.url,
    env: { API_TOKENS: `ops:${ADMIN}:admin,team:${USER}` },
  });
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await master?.close();
  await redis?.stop();
});

describe('flota token worker', () => {
  it('prints a credential a worker starts with, and the line to start it', async () => {
    const run = await flota(['token', 'worker', 'tok-cli-1'], { FLOTA_TOKEN: ADMIN });
    expect(run.code).toBe(0);
    const credential = run.stdout.trim();
    expect(credential).toMatch(/^fwt1\./);
    expect(run.stderr).toContain(`WORKER_ID=tok-cli-1 WORKER_TOKEN=${credential} flota worker`);

    workers.push(
      await startTestWorker(master, { WORKER_ID: 'tok-cli-1', WORKER_TOKEN: credential }),
    );
    await waitFor(async () => (await workerState('tok-cli-1')) === 'online', {
      what: 'the worker online with its credential',
    });
  });

  it('picks an id when none is given (--json, --token)', async () => {
    const reply = asJson<CredentialResponse>(
      await flota(['token', 'worker', '--json', '--token', ADMIN]),
    );
    expect(reply.workerId).toMatch(/^worker-[0-9a-f]{8}$/);
    expect(reply.credential).toMatch(/^fwt1\./);
  });

  it('refuses an id the master would refuse, before sending anything', async () => {
    const run = await flota(['token', 'worker', 'bad id!'], { FLOTA_TOKEN: ADMIN });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^flota: id: /m);
  });
});

describe('flota token join', () => {
  it('prints a join token for a prefix, and the line to start workers with it', async () => {
    const run = await flota(['token', 'join', 'swarm-'], { FLOTA_TOKEN: ADMIN });
    expect(run.code).toBe(0);
    const joinToken = run.stdout.trim();
    expect(joinToken).toMatch(/^fjt1\./);
    expect(run.stderr).toContain(`WORKER_JOIN_TOKEN=${joinToken} WORKER_ID=swarm-… flota worker`);

    const any = asJson<JoinTokenResponse>(
      await flota(['token', 'join', '--json'], { FLOTA_TOKEN: ADMIN }),
    );
    expect(any.prefix).toBe('');
  });
});

describe('flota token revoke', () => {
  it('revokes a worker: its credential stops working', async () => {
    const issued = asJson<CredentialResponse>(
      await flota(['token', 'worker', 'tok-cli-2', '--json'], { FLOTA_TOKEN: ADMIN }),
    );
    workers.push(
      await startTestWorker(master, { WORKER_ID: 'tok-cli-2', WORKER_TOKEN: issued.credential }),
    );
    await waitFor(async () => (await workerState('tok-cli-2')) === 'online', {
      what: 'the worker online',
    });

    const run = await flota(['token', 'revoke', 'tok-cli-2'], { FLOTA_TOKEN: ADMIN });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^tok-cli-2 revoked at \d{4}-\d\d-\d\dT/);
    await waitFor(async () => (await workerState('tok-cli-2')) !== 'online', {
      timeoutMs: 15_000,
      what: 'the revoked worker gone',
    });

    const again = asJson<RevokeResponse>(
      await flota(['token', 'revoke', 'tok-cli-2', '--json'], { FLOTA_TOKEN: ADMIN }),
    );
    expect(again.workerId).toBe('tok-cli-2');
  });
});

describe('flota token: refusals say what to do', () => {
  it('403 for a user token, 401 without one, and a hint when no master answers', async () => {
    const user = await flota(['token', 'worker', 'w-x'], { FLOTA_TOKEN: USER });
    expect(user.code).toBe(1);
    expect(user.stderr).toMatch(/403 .*use an admin token/);
    expect(user.stdout).toBe('');

    const anonymous = await flota(['token', 'join', 'x-']);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toContain('pass --token or set FLOTA_TOKEN');

    const nobody = await flota(['token', 'revoke', 'w-x'], {
      FLOTA_URL: `http://127.0.0.1:${await freePort()}`,
      FLOTA_TOKEN: ADMIN,
    });
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/cannot reach the master at .*ECONNREFUSED.*FLOTA_URL/);
  });
});
