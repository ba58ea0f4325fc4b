/**
 * The audit trail of a real master on PostgreSQL: fleet commands and a
 * refused request are in the store's table, and still there after a restart.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EmbeddedPostgresServer,
  startEmbeddedPostgres,
} from '../../../master/src/store/embedded-postgres.ts';
import type { AuditPage } from '../../../proto/src/schemas/audit.ts';
import { randomName } from '../../helpers/random-name.ts';
import { api, startTestMaster } from './support.ts';

const ADMIN = 'pg-admin-token-0123456789';
const asAdmin = { authorization: `Bearer ${ADMIN}` };

let dataDir: string;
let pg: EmbeddedPostgresServer;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'flota-audit-pg-'));
  pg = await startEmbeddedPostgres({ dataDir, log: pino({ level: 'silent' }) });
});

afterAll(async () => {
  await pg?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('audit trail on PostgreSQL', () => {
  it('records fleet commands and refusals, and keeps them across a master restart', async () => {
    const options = {
      queueUrl: pg.connectionString,
      env: {
        API_TOKENS: `ops:${ADMIN}:admin`,
        QUEUE_NAMESPACE: randomName('a').replace(/-/g, '_'),
      },
    };
    const first = await startTestMaster(options);
    expect((await api(first, '/api/fleet/stop', { body: {}, headers: asAdmin })).status).toBe(200);
    expect((await api(first, '/api/fleet/resume', { body: {}, headers: asAdmin })).status).toBe(
      200,
    );
    expect((await api(first, '/api/fleet')).status).toBe(401);
    await first.close();

    const second = await startTestMaster(options);
    try {
      const { status, body } = await api<AuditPage>(second, '/api/audit', { headers: asAdmin });
      expect(status).toBe(200);
      expect(body.records.map((r) => r.action)).toEqual([
        'auth.refused',
        'fleet.resume',
        'fleet.stop',
      ]);
      expect(body.records[2]).toMatchObject({ actor: 'ops', role: 'admin', result: 'ok' });
    } finally {
      await second.close();
    }
  });
});
