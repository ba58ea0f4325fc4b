/** Alerts on /metrics: what fires now per rule, and how webhook deliveries ended. */
import { Counter, Gauge, type Registry } from 'prom-client';
import { ALERT_RULES } from '../../../proto/src/schemas/console.ts';
import type { AlertEngine } from './alert-engine.ts';
import { type AlertWebhook, WEBHOOK_OUTCOMES } from './webhook.ts';

export function registerAlertMetrics(
  registry: Registry,
  alerts: Pick<AlertEngine, 'current'>,
  webhook?: Pick<AlertWebhook, 'count'>,
): void {
  new Gauge({
    name: 'flota_alerts_firing',
    help: "Alerts the master's own rules fire now, per rule (GET /api/alerts)",
    labelNames: ['rule'],
    registers: [registry],
    collect() {
      const counts = new Map<string, number>(ALERT_RULES.map((rule) => [rule, 0]));
      for (const alert of alerts.current().firing) {
        counts.set(alert.rule, (counts.get(alert.rule) ?? 0) + 1);
      }
      for (const [rule, n] of counts) this.set({ rule }, n);
    },
  });
  new Counter({
    name: 'flota_alert_webhook_deliveries_total',
    help: 'Alert changes sent to ALERT_WEBHOOK_URL, by outcome: delivered, failed (given up after its tries or refused), dropped (the queue was full)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const outcome of WEBHOOK_OUTCOMES) this.inc({ outcome }, webhook?.count(outcome) ?? 0);
    },
  });
}
