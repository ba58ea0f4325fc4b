import { describe, expect, it } from 'vitest';
import { queueKeyOfTaskId, taskIdFor } from '../../../proto/src/queues.ts';
import { taskChunkMessageSchema } from '../../../proto/src/schemas/grpc.ts';
import {
  assignmentSchema,
  controlSchema,
  MAX_PROMPT_CHARS,
  submitTaskSchema,
} from '../../../proto/src/schemas/task.ts';
import { heartbeatSchema, workerStatusSchema } from '../../../proto/src/schemas/worker.ts';
import { helloSchema } from '../../../proto/src/socket-events.ts';

describe('wire schemas', () => {
  it('accepts a minimal submission and rejects unknown or bad fields with a path', () => {
    expect(submitTaskSchema.parse({ prompt: 'hi' })).toEqual({ prompt: 'hi' });
    const bad = submitTaskSchema.safeParse({ prompt: '', requires: { gpu: 'yes' }, extra: 1 });
    expect(bad.success).toBe(false);
    const paths = bad.error?.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['prompt', 'requires.gpu']));
  });
  it('accepts conversation history within the budget and rejects more', () => {
    const turn = { role: 'user' as const, content: 'x'.repeat(90_000) };
    expect(submitTaskSchema.safeParse({ prompt: 'hi', messages: [turn, turn, turn] }).success).toBe(
      true,
    );
    const over = submitTaskSchema.safeParse({
      prompt: 'hi',
      messages: [turn, turn, turn, turn, turn],
    });
    expect(over.success).toBe(false);
    expect(over.error?.issues[0]?.message).toMatch(/exceed/);
    expect(
      submitTaskSchema.safeParse({ prompt: 'hi', messages: [{ role: 'tool', content: 'x' }] })
        .success,
    ).toBe(false);
  });
  it('caps prompt size', () => {
    expect(submitTaskSchema.safeParse({ prompt: 'x'.repeat(MAX_PROMPT_CHARS + 1) }).success).toBe(
      false,
    );
  });
  it('parses status, Last Will, heartbeat, assignment and control messages', () => {
    expect(workerStatusSchema.parse({ state: 'offline', id: 'w1' })).toEqual({
      state: 'offline',
      id: 'w1',
      reason: 'lost',
    });
    expect(
      heartbeatSchema.parse({
        id: 'w1',
        ts: 1,
        cpuPct: 5,
        mem: { usedPct: 1, totalMb: 2, rssMb: 3 },
        freeSlots: 1,
      }),
    ).toMatchObject({ gpus: [], active: [], draining: false });
    expect(
      assignmentSchema.parse({
        taskId: 't',
        attempt: 1,
        lease: 'l',
        model: 'echo',
        prompt: 'p',
        deadline: 1,
        queuedAt: 0,
      }).params,
    ).toEqual({});
    expect(controlSchema.safeParse({ type: 'cancel' }).success).toBe(false);
    expect(controlSchema.parse({ type: 'drain' })).toEqual({ type: 'drain' });
  });
  it('rejects fencing fields left at their proto3 defaults', () => {
    expect(
      taskChunkMessageSchema.safeParse({ taskId: '', attempt: 0, lease: '', seq: 0, text: 'x' })
        .success,
    ).toBe(false);
  });
  it('checks session ids', () => {
    expect(helloSchema.safeParse({ sessionId: 'abc' }).success).toBe(false);
    expect(helloSchema.safeParse({ sessionId: 'a1b2c3d4e5' }).success).toBe(true);
  });
  it('task ids carry their queue', () => {
    const id = taskIdFor({ capability: 'gpu', model: 'llama3:8b' }, 'abc123');
    expect(queueKeyOfTaskId(id)).toEqual({ capability: 'gpu', model: 'llama3:8b' });
    expect(queueKeyOfTaskId('nonsense')).toBeUndefined();
  });
});
