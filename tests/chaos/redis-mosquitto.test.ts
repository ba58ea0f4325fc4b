/**
 * Chaos with external Redis (append-only, fsync always) and Mosquitto:
 * 1,000 tasks from several sessions while workers are SIGKILLed every 2 s,
 * one is SIGSTOPped past its heartbeat limit, Mosquitto restarts, the master
 * is SIGKILLed and restarted and Redis is down for 5 s. Every task must end,
 * every answer must reach its session exactly once, and nothing may crash.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ChaosRun } from './support/chaos-run.ts';
import { chaosSettings } from './support/config.ts';
import { reportOutcome } from './support/report.ts';

const settings = chaosSettings();
const run = new ChaosRun('redis', settings);

afterAll(() => run.stop());

describe('chaos: master + workers over Mosquitto and Redis', () => {
  it(`delivers ${settings.tasks} answers exactly once through process kills and outages`, async () => {
    const outcome = await run.execute();
    reportOutcome(run, outcome, settings);
    expect(outcome.figures.tasks).toBe(settings.tasks);
    expect(outcome.problems).toEqual([]);
  });
});
