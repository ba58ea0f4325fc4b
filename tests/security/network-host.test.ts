/**
 * A master on a network address never runs open: without API_TOKENS it makes
 * an admin token on its first start, shows it once, keeps it in the data dir
 * and demands it from then on — also after a restart.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMasterConfig } from '../../master/src/config.ts';
import { type MasterHandle, startMaster } from '../../master/src/main.ts';
import { GENERATED_TOKENS_FILE } from '../../master/src/security/exposure.ts';
import { randomName } from '../helpers/random-name.ts';
import { startRedis } from '../helpers/redis-server.ts';
import { testLogger } from '../integration/master/support.ts';

let redis: Awaited<ReturnType<typeof startRedis>>;
let dataDir: string;
const namespace = randomName('t')
  .replace(/[^a-z0-9_]/g, '_')
  .toLowerCase();

async function start(notices: string[]): Promise<MasterHandle> {
  const config = loadMasterConfig({
    HOST: '0.0.0.0',
    PORT: '0',
    GRPC_PORT: '0',
    MQTT_PORT: '0',
    QUEUE_URL: redis.url,
    QUEUE_NAMESPACE: namespace,
    FLOTA_DATA_DIR: dataDir,
  });
  return startMaster(config, { logger: testLogger('master'), notice: (t) => notices.push(t) });
}

/** Loopback: the master listens everywhere, the test only talks to 127.0.0.1. */
const local = (master: MasterHandle, path: string) =>
  `${master.httpUrl.replace('0.0.0.0', '127.0.0.1')}${path}`;

beforeAll(async () => {
  redis = await startRedis();
  dataDir = await mkdtemp(join(tmpdir(), 'flota-sec-nethost-'));
});

afterAll(async () => {
  await redis?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('HOST=0.0.0.0 without API_TOKENS', () => {
  it('generates an admin token once, keeps it private, and requires it', async () => {
    const notices: string[] = [];
    const first = await start(notices);
    try {
      expect(notices).toHaveLength(1);
      const token = /flota:\s+(fla_\S+)/.exec(notices[0] ?? '')?.[1];
      expect(token).toBeDefined();
      expect((await stat(join(dataDir, GENERATED_TOKENS_FILE))).mode & 0o077).toBe(0);
      expect((await fetch(local(first, '/api/workers'))).status).toBe(401);
      const ok = await fetch(local(first, '/api/workers'), {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(ok.status).toBe(200);
    } finally {
      await first.close();
    }

    const again: string[] = [];
    const second = await start(again);
    try {
      expect(again).toEqual([]);
      expect((await fetch(local(second, '/api/workers'))).status).toBe(401);
    } finally {
      await second.close();
    }
  });
});
