/**
 * The Grafana dashboard asks only for metrics the master and the autoscaler
 * really export: the names come from live MasterMetrics and AutoscalerMetrics
 * registries, not from a copy of them. Grafana's provisioning points at the
 * same datasource and folder the dashboard and docker-compose.yml use.
 * Prometheus also scrapes the autoscaler when it runs.
 */

import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoscalerMetrics } from '../../../autoscaler/src/metrics.ts';
import { registerAlertMetrics } from '../../../master/src/alerts/alert-metrics.ts';
import { MasterMetrics, type MetricsDeps } from '../../../master/src/metrics/master-metrics.ts';
import { HeartbeatMeter } from '../../../master/src/registry/heartbeat-meter.ts';
import { parseYaml, ROOT } from './support/tools.ts';

interface Panel {
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
}

const DASHBOARD = 'deploy/monitoring/grafana/dashboards/flota.json';
const dashboard = JSON.parse(readFileSync(join(ROOT, DASHBOARD), 'utf8')) as {
  uid: string;
  panels: Panel[];
};
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

let metrics: MasterMetrics;
let exported: Map<string, string>;

beforeAll(async () => {
  const deps = {
    events: new EventEmitter(),
    registry: { list: () => [], size: () => 0, heartbeats: new HeartbeatMeter() },
    tasks: { queueCounts: async () => ({}) },
    results: { rejected: new Map() },
  } as unknown as MetricsDeps;
  metrics = new MasterMetrics(deps);
  registerAlertMetrics(metrics.registry, { current: () => ({ firing: [], recent: [] }) });
  const json = [
    ...(await metrics.registry.getMetricsAsJSON()),
    ...(await new AutoscalerMetrics().registry.getMetricsAsJSON()),
  ];
  exported = new Map(json.map((m) => [m.name, String(m.type)]));
});

afterAll(() => metrics?.close());

/** Series a query names: flota_… identifiers not followed by "(" (functions) or "=" (labels). */
function seriesIn(expr: string): string[] {
  return [...expr.matchAll(/\b(flota_[a-z0-9_]+)\b(?!\s*[(=~])/g)].map((m) => m[1] ?? '');
}

function unknownSeries(exprs: string[]): string[] {
  const unknown: string[] = [];
  for (const series of exprs.flatMap(seriesIn)) {
    const histogram = /^(.*)_(bucket|sum|count)$/.exec(series)?.[1];
    const known =
      exported.has(series) || (histogram !== undefined && exported.get(histogram) === 'histogram');
    if (!known) unknown.push(series);
  }
  return unknown;
}

describe('monitoring', () => {
  it('queries only series the master exports, and every flota metric somewhere', () => {
    expect(queries.length).toBeGreaterThan(10);
    expect(unknownSeries(queries)).toEqual([]);
    const used = new Set(queries.flatMap(seriesIn).map((s) => s.replace(/_bucket$/, '')));
    const own = [...exported.keys()].filter((n) => !/^flota_(master|autoscaler_process)_/.test(n));
    expect(own.length).toBeGreaterThanOrEqual(7);
    for (const name of own) expect(used, `${name} has no panel`).toContain(name);
  });

  it('would notice a misspelt or removed metric', () => {
    expect(
      unknownSeries([
        'sum(rate(flota_task_total[5m]))',
        'histogram_quantile(0.9, rate(flota_workers_bucket[5m]))',
        'flota_master_process_resident_memory_bytes',
      ]),
    ).toEqual(['flota_task_total', 'flota_workers_bucket']);
  });

  it('reads every panel from the provisioned Prometheus datasource', () => {
    const datasources = parseYaml(
      readFileSync(
        join(ROOT, 'deploy/monitoring/grafana/provisioning/datasources/prometheus.yml'),
        'utf8',
      ),
    ) as { datasources: Array<{ uid: string; url: string; type: string }> };
    const [source] = datasources.datasources;
    expect(source).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).toBe(source?.uid);
      for (const target of panel.targets ?? []) {
        expect(target.datasource?.uid, panel.title).toBe(source?.uid);
      }
    }
  });

  it("scrapes the autoscaler's flota_autoscaler_* metrics where stack.yml runs it", async () => {
    const prometheus = parseYaml(
      readFileSync(join(ROOT, 'deploy/monitoring/prometheus.yml'), 'utf8'),
    ) as {
      scrape_configs: Array<{
        job_name: string;
        metrics_path: string;
        dns_sd_configs?: Array<{ names: string[]; type: string; port: number }>;
      }>;
    };
    const job = prometheus.scrape_configs.find((c) => c.job_name === 'flota-autoscaler');
    expect(job?.metrics_path).toBe('/metrics');
    const [sd] = job?.dns_sd_configs ?? [];
    // Swarm's DNS answers tasks.<service> with the service's task addresses.
    expect(sd?.names).toEqual(['tasks.autoscaler']);
    expect(sd?.type).toBe('A');
    const stack = readFileSync(join(ROOT, 'stack.yml'), 'utf8');
    expect(stack).toMatch(/^ {2}autoscaler:$/m);
    expect(stack).toContain(`AUTOSCALE_PORT: "${sd?.port}"`);
    const autoscaler = new AutoscalerMetrics();
    const names = (await autoscaler.registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names).toContain('flota_autoscaler_decisions_total');
    expect(names.every((n) => n.startsWith('flota_autoscaler_'))).toBe(true);
  });

  it('provisions dashboards from the directory docker-compose.yml mounts them in', () => {
    const providers = parseYaml(
      readFileSync(
        join(ROOT, 'deploy/monitoring/grafana/provisioning/dashboards/flota.yml'),
        'utf8',
      ),
    ) as { providers: Array<{ options: { path: string } }> };
    const path = providers.providers[0]?.options.path;
    expect(path).toBe('/etc/grafana/dashboards');
    const compose = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
    expect(compose).toContain(`./deploy/monitoring/grafana/dashboards:${path}:ro`);
    expect(compose).toContain(`GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: ${path}/flota.json`);
  });
});
