import { describe, expect, it } from 'vitest';
import { parseQueueName, queueName } from '../../proto/src/queues.ts';
import { createTopics } from '../../proto/src/topics.ts';

describe('topics', () => {
  const topics = createTopics();
  it('builds worker topics under the default prefix', () => {
    expect(topics.status('w-1')).toBe('flota/v1/workers/w-1/status');
    expect(topics.tasks('w-1')).toBe('flota/v1/workers/w-1/tasks');
    expect(topics.log('master')).toBe('flota/v1/logs/master');
    expect(topics.allLogs()).toBe('flota/v1/logs/#');
  });
  it('honours a custom prefix and strips a trailing slash', () => {
    expect(createTopics('acme/flota/').heartbeat('a')).toBe('acme/flota/workers/a/heartbeat');
  });
  it('refuses ids that would break the topic tree', () => {
    for (const bad of ['', 'a/b', '+', '#', 'x y', '-lead']) {
      expect(() => topics.status(bad)).toThrow(/invalid worker id/);
    }
  });
  it('parses its own topics back and ignores others', () => {
    expect(topics.parseWorkerTopic('flota/v1/workers/w-9/heartbeat')).toEqual({
      workerId: 'w-9',
      kind: 'heartbeat',
    });
    expect(topics.parseWorkerTopic('flota/v1/workers/w-9/other')).toBeUndefined();
    expect(topics.parseWorkerTopic('flota/v1/workers/a/b/status')).toBeUndefined();
    expect(topics.parseWorkerTopic('other/workers/w/status')).toBeUndefined();
  });
});

describe('queue names', () => {
  it('round-trips models with characters BullMQ forbids', () => {
    for (const model of ['echo', 'llama3:8b', 'gemini-2.5-flash', 'org/model v2']) {
      for (const capability of ['any', 'gpu'] as const) {
        const name = queueName({ capability, model });
        expect(name).not.toContain(':');
        expect(parseQueueName(name)).toEqual({ capability, model });
      }
    }
  });
});

describe('embedded broker delivery rule', () => {
  it('forwards a worker’s tasks and control only to that worker’s client', async () => {
    const { privateTopicFilter } = await import('../../master/src/broker/embedded-broker.ts');
    const { workerClientId } = await import('../../proto/src/topics.ts');
    const topics = createTopics();
    const may = privateTopicFilter(topics);
    expect(may(workerClientId('w1'), topics.tasks('w1'))).toBe(true);
    expect(may(workerClientId('w2'), topics.tasks('w1'))).toBe(false);
    expect(may('spy', topics.control('w1'))).toBe(false);
    expect(may(undefined, topics.tasks('w1'))).toBe(false);
    expect(may('spy', topics.status('w1'))).toBe(true);
    expect(may('spy', topics.log('master'))).toBe(true);
  });
});
