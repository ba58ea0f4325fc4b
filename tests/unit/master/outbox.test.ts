import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  OUTBOX_IDLE_MS,
  OUTBOX_MAX_EVENTS,
  Outboxes,
} from '../../../master/src/realtime/outbox.ts';
import type { TaskView } from '../../../proto/src/schemas/task.ts';

const view = (id: string, state: TaskView['state'] = 'completed'): TaskView => ({
  id,
  state,
  model: 'echo',
  priority: 0,
  requires: {},
  attempt: 1,
  timings: { submittedAt: 0 },
  result: 'done',
});
const chunk = (taskId: string, seq: number) => ({ taskId, attempt: 1, seq, text: `c${seq}` });

describe('session outbox', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('numbers events per session and replays exactly what came after lastSeq', () => {
    const boxes = new Outboxes();
    const a = boxes.append('s1', 'task:queued', { taskId: 't1' });
    const b = boxes.append('s1', 'task:chunk', chunk('t1', 0));
    boxes.append('s2', 'task:queued', { taskId: 't9' });
    expect([a?.seq, b?.seq]).toEqual([1, 2]);
    expect(boxes.replay('s1', boxes.epoch, 1)?.map((e) => e.seq)).toEqual([2]);
    expect(boxes.replay('s1', boxes.epoch, 2)).toEqual([]);
    // One counter per epoch: session s2's first event got the next number.
    expect(boxes.replay('s2', boxes.epoch, 2)?.map((e) => `${e.taskId}:${e.seq}`)).toEqual([
      't9:3',
    ]);
  });

  it('records one terminal event per task and nothing after it', () => {
    const boxes = new Outboxes();
    expect(boxes.append('s', 'task:completed', view('t1'))).toBeDefined();
    expect(boxes.append('s', 'task:completed', view('t1'))).toBeUndefined();
    expect(boxes.append('s', 'task:failed', view('t1', 'failed'))).toBeUndefined();
    expect(boxes.append('s', 'task:chunk', chunk('t1', 3))).toBeUndefined();
    expect(boxes.terminalSeq('s', 't1')).toBe(1);
  });

  it("drops a finished task's chunks: its terminal event carries the whole answer", () => {
    const boxes = new Outboxes();
    boxes.append('s', 'task:chunk', chunk('t1', 0));
    boxes.append('s', 'task:chunk', chunk('t2', 0));
    boxes.append('s', 'task:chunk', chunk('t1', 1));
    boxes.append('s', 'task:completed', view('t1'));
    const names = boxes.replay('s', boxes.epoch, 0)?.map((e) => `${e.name}:${e.taskId}:${e.seq}`);
    expect(names).toEqual(['task:chunk:t2:2', 'task:completed:t1:4']);
  });

  it('cannot replay across epochs, below the trimmed floor, or ahead of itself', () => {
    const boxes = new Outboxes();
    for (let i = 0; i < 5; i += 1) boxes.append('s', 'task:queued', { taskId: `t${i}` });
    expect(boxes.replay('s', 'another-epoch', 0)).toBeUndefined();
    boxes.trim('s', 3);
    expect(boxes.replay('s', boxes.epoch, 2)).toBeUndefined();
    expect(boxes.replay('s', boxes.epoch, 3)?.map((e) => e.seq)).toEqual([4, 5]);
    expect(boxes.replay('s', boxes.epoch, 9)).toBeUndefined();
  });

  it('keeps at most OUTBOX_MAX_EVENTS per session; a client behind that resyncs', () => {
    const boxes = new Outboxes();
    const total = OUTBOX_MAX_EVENTS * 1.1 + 1;
    for (let i = 0; i < total; i += 1) {
      boxes.append('s', 'task:queued', { taskId: `t${i}` });
    }
    expect(boxes.size()).toBe(OUTBOX_MAX_EVENTS);
    const dropped = total - OUTBOX_MAX_EVENTS;
    expect(boxes.replay('s', boxes.epoch, dropped - 1)).toBeUndefined();
    expect(boxes.replay('s', boxes.epoch, dropped)?.length).toBe(OUTBOX_MAX_EVENTS);
  });

  it('stamps resync answers for one socket without recording them', () => {
    const boxes = new Outboxes();
    boxes.append('s', 'task:queued', { taskId: 't1' });
    const seq = boxes.stamp('s');
    expect(seq).toBe(2);
    expect(boxes.replay('s', boxes.epoch, 0)?.map((e) => e.seq)).toEqual([1]);
    expect(boxes.terminalSeq('s', 't1')).toBeUndefined();
    expect(boxes.peekSeq()).toBe(3);
  });

  it('forgets sessions nobody touched for OUTBOX_IDLE_MS; one made anew never reuses numbers', () => {
    const boxes = new Outboxes();
    boxes.append('old', 'task:queued', { taskId: 't1' });
    boxes.append('old', 'task:queued', { taskId: 't2' });
    vi.advanceTimersByTime(OUTBOX_IDLE_MS + 1);
    boxes.touch('new');
    expect(boxes.size()).toBe(0);
    expect(boxes.append('old', 'task:queued', { taskId: 't3' })?.seq).toBe(3);
    // Its client held up to 2 from the forgotten outbox: it cannot be replayed to, so it resyncs.
    expect(boxes.replay('old', boxes.epoch, 1)).toBeUndefined();
  });
});
