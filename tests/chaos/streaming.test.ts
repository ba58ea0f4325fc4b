/**
 * Chaos for streamed answers: long echo answers from several sessions and
 * through `/v1/chat/completions` while workers are SIGKILLed every 2 s and
 * one is SIGSTOPped. An attempt that dies mid-stream is continued by the
 * next worker: every answer equals the uninterrupted one, what a browser
 * shows is always the start of it, and every /v1 stream carries it whole,
 * with no text repeated.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ChaosRun } from './support/chaos-run.ts';
import { streamingChaosSettings } from './support/config.ts';
import { reportOutcome } from './support/report.ts';

const settings = streamingChaosSettings();
const run = new ChaosRun('streaming', settings);

afterAll(() => run.stop());

describe('chaos: answers streamed while workers die', () => {
  it(`continues ${settings.tasks} streamed answers where their worker died`, async () => {
    const outcome = await run.execute();
    reportOutcome(run, outcome, settings);
    expect(outcome.figures.tasks).toBe(settings.tasks);
    expect(outcome.figures.continuedAttempts).toBeGreaterThan(0);
    expect(outcome.problems).toEqual([]);
  });
});
