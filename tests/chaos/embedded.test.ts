/**
 * Chaos with the embedded broker and embedded PostgreSQL inside the master:
 * 1,000 tasks from several sessions while workers are SIGKILLed every 2 s,
 * one is SIGSTOPped past its heartbeat limit, and the master (with the broker
 * and store it hosts) is SIGKILLed and restarted on the same data directory.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ChaosRun } from './support/chaos-run.ts';
import { chaosSettings } from './support/config.ts';
import { reportOutcome } from './support/report.ts';

const settings = chaosSettings();
const run = new ChaosRun('embedded', settings);

afterAll(() => run.stop());

describe('chaos: master with embedded broker and PostgreSQL', () => {
  it(`delivers ${settings.tasks} answers exactly once through process kills`, async () => {
    const outcome = await run.execute();
    reportOutcome(run, outcome, settings);
    expect(outcome.figures.tasks).toBe(settings.tasks);
    expect(outcome.problems).toEqual([]);
  });
});
