/**
 * A dashboard can trust the first scrape: every counter the master and the
 * autoscaler export has its series, at 0, before anything happened, so
 * `increase()` over a restart counts from 0 instead of losing the first
 * events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoscalerMetrics } from '../../../autoscaler/src/metrics.ts';
import { startRedis } from '../../helpers/redis-server.ts';
import { startTestMaster } from '../master/support.ts';

/** Counter names declared (`# TYPE name counter`) with no sample line. */
function countersWithoutSeries(text: string): string[] {
  const counters = [...text.matchAll(/^# TYPE (\S+) counter$/gm)].map((m) => m[1] as string);
  return counters.filter((name) => !new RegExp(`^${name}(\\{[^}]*\\})? \\d`, 'm').test(text));
}

let redis: Awaited<ReturnType<typeof startRedis>>;
let master: Awaited<ReturnType<typeof startTestMaster>>;

beforeAll(async () => {
  redis = await startRedis();
  master = await startTestMaster({ queueUrl: redis.url });
});

afterAll(async () => {
  await master?.close();
  await redis?.stop();
});

describe('counters at 0 from the first scrape', () => {
  it('the master exports every counter, by every outcome and reason, before any task', async () => {
    const text = await (await fetch(`${master.httpUrl}/metrics`)).text();
    expect(countersWithoutSeries(text)).toEqual([]);
    expect(text).toMatch(/^flota_tasks_total\{outcome="completed"\} 0$/m);
    expect(text).toMatch(/^flota_tasks_total\{outcome="failed"\} 0$/m);
    expect(text).toMatch(/^flota_results_rejected_total\{reason="stale_lease"\} 0$/m);
    expect(text).toMatch(/^flota_workers\{state="online"\} 0$/m);
  });

  it('the autoscaler exports its decisions and errors per pool before its first round', async () => {
    const metrics = new AutoscalerMetrics(['worker-cpu']);
    const text = await metrics.registry.metrics();
    expect(countersWithoutSeries(text)).toEqual([]);
    expect(text).toMatch(
      /^flota_autoscaler_decisions_total\{pool="worker-cpu",action="up",reason="backlog"\} 0$/m,
    );
    expect(text).toMatch(/^flota_autoscaler_errors_total\{pool="worker-cpu",stage="scale"\} 0$/m);
  });
});
