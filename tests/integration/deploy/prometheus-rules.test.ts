/**
 * deploy/monitoring/alerts.yml, the Prometheus side of flota's alerts:
 * promtool accepts it, its unit tests (alerts.test.yml) pass, so backlog,
 * worker down, error rate, latency and no-worker fire once their `for` has
 * passed and not before; it asks only for series the master exports; its
 * thresholds are the master's defaults; Prometheus loads it from where
 * docker-compose.yml mounts it.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAlertMetrics } from '../../../master/src/alerts/alert-metrics.ts';
import { loadMasterConfig } from '../../../master/src/config.ts';
import { MasterMetrics, type MetricsDeps } from '../../../master/src/metrics/master-metrics.ts';
import { HeartbeatMeter } from '../../../master/src/registry/heartbeat-meter.ts';
import { parseYaml, ROOT, run } from '../../unit/deploy/support/tools.ts';

const RULES = 'deploy/monitoring/alerts.yml';
const RULE_TESTS = 'deploy/monitoring/alerts.test.yml';

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: string; rule: string };
}
const rules = (
  parseYaml(readFileSync(join(ROOT, RULES), 'utf8')) as { groups: Array<{ rules: Rule[] }> }
).groups.flatMap((g) => g.rules);
const ruleFor = (name: string) => rules.find((r) => r.labels.rule === name) as Rule;

/** promtool's output on failure, so a broken rule is explained in the test's own report. */
function promtool(args: string[]): { status: number | null; output: string } {
  const result = run('promtool', args);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

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
  const json = await metrics.registry.getMetricsAsJSON();
  exported = new Map(json.map((m) => [m.name, String(m.type)]));
});

afterAll(() => metrics?.close());

describe('Prometheus alert rules', () => {
  it('pass promtool check rules', () => {
    const { status, output } = promtool(['check', 'rules', RULES]);
    expect(output).toContain('SUCCESS: 5 rules found');
    expect(status, output).toBe(0);
  });

  it('pass their unit tests (promtool test rules): each fires after its for, not before', () => {
    const { status, output } = promtool(['test', 'rules', RULE_TESTS]);
    expect(status, output).toBe(0);
    expect(output).toContain('SUCCESS');
    const tests = readFileSync(join(ROOT, RULE_TESTS), 'utf8');
    for (const alert of ['FlotaBacklog', 'FlotaWorkerDown', 'FlotaErrorRate']) {
      expect(tests, alert).toContain(`alertname: ${alert}`);
    }
  });

  it('cover every rule of the master, with its default thresholds', () => {
    const defaults = loadMasterConfig({});
    expect(rules.map((r) => r.labels.rule).sort()).toEqual(
      ['backlog', 'error_rate', 'latency_p95', 'no_worker_for_model', 'worker_down'].sort(),
    );
    const window = `[${defaults.ALERT_WINDOW_SECONDS / 60}m]`;
    expect(ruleFor('worker_down').for).toBe(`${defaults.ALERT_WORKER_DOWN_SECONDS}s`);
    expect(ruleFor('backlog').expr).toContain(`> ${defaults.ALERT_BACKLOG_TASKS}`);
    expect(ruleFor('backlog').for).toBe(`${defaults.ALERT_BACKLOG_SECONDS / 60}m`);
    expect(ruleFor('error_rate').expr).toContain(`> ${defaults.ALERT_ERROR_RATE}`);
    expect(ruleFor('error_rate').expr).toContain(`>= ${defaults.ALERT_MIN_TASKS}`);
    expect(ruleFor('error_rate').expr).toContain(window);
    expect(ruleFor('latency_p95').expr).toContain(`> ${defaults.ALERT_P95_MS / 1000}`);
    expect(ruleFor('latency_p95').expr).toContain(`>= ${defaults.ALERT_MIN_TASKS}`);
    expect(ruleFor('latency_p95').expr).toContain(window);
    expect(ruleFor('no_worker_for_model').for).toBe(`${defaults.ALERT_NO_WORKER_SECONDS}s`);
  });

  it('ask only for series the master exports', () => {
    const named = rules.flatMap((r) =>
      [...r.expr.matchAll(/\b(flota_[a-z0-9_]+)\b(?!\s*[(=~])/g)].map((m) => m[1] ?? ''),
    );
    expect(named.length).toBeGreaterThan(5);
    for (const series of named) {
      const histogram = /^(.*)_(bucket|sum|count)$/.exec(series)?.[1];
      const known =
        exported.has(series) ||
        (histogram !== undefined && exported.get(histogram) === 'histogram');
      expect(known, series).toBe(true);
    }
  });

  it('are loaded by prometheus.yml from where docker-compose.yml mounts them', () => {
    const prometheus = parseYaml(
      readFileSync(join(ROOT, 'deploy/monitoring/prometheus.yml'), 'utf8'),
    ) as { rule_files: string[] };
    expect(prometheus.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    const compose = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
    expect(compose).toContain('./deploy/monitoring/alerts.yml:/etc/prometheus/alerts.yml:ro');
    expect(compose).toContain(
      './deploy/monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro',
    );
  });
});
