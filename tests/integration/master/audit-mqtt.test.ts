/**
 * A login the embedded broker refuses reaches the audit trail, like a
 * refused HTTP request or gRPC call: from where, as whom, and why.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { MasterHandle } from '../../../master/src/main.ts';
import type { AuditPage } from '../../../proto/src/schemas/audit.ts';
import { waitFor } from '../../helpers/wait-for.ts';
import { api, startTestMaster } from './support.ts';

let master: MasterHandle;

beforeAll(async () => {
  master = await startTestMaster({ env: { RATE_LIMIT_RPM: '0' } });
});

afterAll(async () => {
  await master?.close();
});

it('records a refused MQTT login in the audit trail', async () => {
  const since = Date.now();
  const client = mqtt.connect(master.mqttUrl, {
    clientId: 'flota-worker-intruder',
    username: 'intruder',
    password: 'not-a-credential',
    reconnectPeriod: 0,
  });
  const refused = await new Promise<Error>((resolve) => client.once('error', resolve));
  client.end(true);
  expect(refused.message).toMatch(/Not authorized|Bad username or password/i);

  const page = await waitFor(async () => {
    const { body } = await api<AuditPage>(master, `/api/audit?action=auth.refused&since=${since}`);
    return body.records.length > 0 ? body : undefined;
  });
  expect(page.records[0]).toMatchObject({
    action: 'auth.refused',
    result: 'refused',
    target: 'MQTT login flota-worker-intruder as intruder',
    detail: expect.stringMatching(/^refused: /),
    from: expect.stringContaining('127.0.0.1'),
  });
  expect(JSON.stringify(page)).not.toContain('not-a-credential');
});
