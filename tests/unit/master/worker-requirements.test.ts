import { describe, expect, it } from 'vitest';
import { canServe, hasLabels } from '../../../master/src/registry/worker-record.ts';
import { MAX_REQUIRED_LABELS, requirementsSchema } from '../../../proto/src/schemas/task.ts';
import { workerOnlineSchema } from '../../../proto/src/schemas/worker.ts';
import { worker } from './policy-support.ts';

describe('label requirements', () => {
  const eu = worker('eu-1', { labels: { region: 'eu', tier: 'fast' } });
  const us = worker('us-1', { labels: { region: 'us' } });

  it('serves a task only with every required label at the same value', () => {
    const need = (labels?: Record<string, string>) => ({ model: 'echo', gpu: false, labels });
    expect(canServe(eu, need({ region: 'eu' }))).toBe(true);
    expect(canServe(eu, need({ region: 'eu', tier: 'fast' }))).toBe(true);
    expect(canServe(eu, need({ region: 'eu', tier: 'slow' }))).toBe(false);
    expect(canServe(us, need({ region: 'eu' }))).toBe(false);
    expect(canServe(us, need({ tier: 'fast' }))).toBe(false);
    expect(canServe(us, need({}))).toBe(true);
    expect(canServe(us, need())).toBe(true);
  });

  it('keeps the other requirements: model, GPU, online and not draining', () => {
    const labels = { region: 'eu' };
    expect(canServe(eu, { model: 'other', gpu: false, labels })).toBe(false);
    expect(canServe(eu, { model: 'echo', gpu: true, labels })).toBe(false);
    const offline = { ...eu, state: 'offline' as const };
    expect(canServe(offline, { model: 'echo', gpu: false, labels })).toBe(false);
  });

  it('never matches inherited properties or an empty value against a missing label', () => {
    expect(hasLabels(us, { toString: 'x' })).toBe(false);
    expect(hasLabels(us, { zone: '' })).toBe(false);
    expect(hasLabels(worker('z', { labels: { zone: '' } }), { zone: '' })).toBe(true);
  });

  it('validates labels in a submission', () => {
    expect(requirementsSchema.parse({ gpu: true, labels: { region: 'eu' } })).toEqual({
      gpu: true,
      labels: { region: 'eu' },
    });
    expect(requirementsSchema.safeParse({ labels: { '': 'x' } }).success).toBe(false);
    expect(requirementsSchema.safeParse({ labels: { region: 7 } }).success).toBe(false);
    expect(requirementsSchema.safeParse({ labels: ['eu'] }).success).toBe(false);
    const many = Object.fromEntries(
      Array.from({ length: MAX_REQUIRED_LABELS + 1 }, (_, i) => [`k${i}`, 'v']),
    );
    expect(requirementsSchema.safeParse({ labels: many }).success).toBe(false);
  });
});

describe('worker weight in the status record', () => {
  const online = {
    state: 'online',
    id: 'w1',
    kind: 'cpu',
    models: ['echo'],
    providers: ['echo'],
    slots: 2,
    version: 't',
    host: 'h',
    startedAt: 1,
  };

  it('defaults to 1 (older workers do not send it) and accepts 1..1000', () => {
    expect(workerOnlineSchema.parse(online).weight).toBe(1);
    expect(workerOnlineSchema.parse({ ...online, weight: 1000 }).weight).toBe(1000);
    for (const weight of [0, -1, 1.5, 1001, '3'])
      expect(workerOnlineSchema.safeParse({ ...online, weight }).success).toBe(false);
  });
});
