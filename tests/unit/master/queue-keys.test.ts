import { describe, expect, it } from 'vitest';
import {
  describeLabels,
  MAX_INLINE_LABELS,
  parseQueueName,
  type QueueKey,
  queueKeyOfTaskId,
  queueName,
  taskIdFor,
} from '../../../proto/src/queues.ts';
import { taskIdSchema } from '../../../proto/src/schemas/task.ts';

const UNIQUE = 'a2ea520f4f044742bfe1dcebfae4ab67';

describe('queue keys with labels', () => {
  const keys: QueueKey[] = [
    { capability: 'any', model: 'echo', labels: { zone: 'eu' } },
    { capability: 'gpu', model: 'llama3:8b', labels: { zone: 'eu', tier: 'gold' } },
    { capability: 'any', model: 'gpt-4.1', labels: { 'rack.v': '1.2', empty: '' } },
    { capability: 'any', model: 'a~b', labels: { 'a=b,c@d': 'x:y/z%' } },
    { capability: 'any', model: 'org/model v2' },
  ];

  it('round-trips queue names and task ids, spelled out and canonical', () => {
    for (const key of keys) {
      const name = queueName(key);
      expect(name).not.toContain(':');
      expect(parseQueueName(name)).toEqual(key);
      const id = taskIdFor(key, UNIQUE);
      expect(queueKeyOfTaskId(id)).toEqual(key);
      expect(taskIdSchema.safeParse(id).success).toBe(true);
    }
  });

  it('names one queue whatever the order of the labels', () => {
    const a = queueName({ capability: 'any', model: 'echo', labels: { b: '2', a: '1' } });
    const b = queueName({ capability: 'any', model: 'echo', labels: { a: '1', b: '2' } });
    expect(a).toBe(b);
    expect(a).toBe('tasks.any.echo@a=1,b=2');
  });

  it('treats empty labels as no labels', () => {
    const plain = queueName({ capability: 'any', model: 'echo' });
    expect(queueName({ capability: 'any', model: 'echo', labels: {} })).toBe(plain);
    expect(plain).toBe('tasks.any.echo');
  });

  it('keeps the unlabelled names and ids of before', () => {
    expect(taskIdFor({ capability: 'gpu', model: 'llama3:8b' }, 'abc')).toBe('gpu.llama3~8b.abc');
    expect(queueKeyOfTaskId('any.gpt-4.1.abc')).toEqual({ capability: 'any', model: 'gpt-4.1' });
  });

  it('uses a stable digest for a long label set; the id still names its queue', () => {
    const labels = { region: 'europe-west-4', datacenter: 'frankfurt-2', tier: 'premium' };
    const key: QueueKey = { capability: 'any', model: 'echo', labels };
    const name = queueName(key);
    expect(name).toMatch(/^tasks\.any\.echo@=[0-9a-f]{16}$/);
    const reordered = Object.fromEntries(Object.entries(labels).reverse());
    expect(queueName({ ...key, labels: reordered })).toBe(name);
    const id = taskIdFor(key, UNIQUE);
    expect(id.length).toBeLessThanOrEqual(128);
    const back = queueKeyOfTaskId(id) as QueueKey;
    expect(back.labels).toBeUndefined();
    expect(queueName(back)).toBe(name);
    expect(parseQueueName(name)).toEqual(back);
    expect(queueName({ ...back, labels })).toBe(name);
    expect(
      queueName({ capability: 'any', model: 'echo', labels: { ...labels, tier: 'basic' } }),
    ).not.toBe(name);
    expect(MAX_INLINE_LABELS).toBeGreaterThan(0);
  });

  it('refuses malformed ids', () => {
    for (const bad of [
      'nonsense',
      'any.@zone=eu.abc',
      'any.echo@zone.abc',
      'any.echo@=xyz.abc',
      'any.echo@%E0%A4%A=1.abc',
      'cpu.echo.abc',
    ]) {
      expect(queueKeyOfTaskId(bad)).toBeUndefined();
    }
  });

  it('describes labels for people', () => {
    expect(describeLabels({ zone: 'eu', tier: 'gold' })).toBe('tier=gold,zone=eu');
    expect(describeLabels(undefined)).toBe('');
  });
});
