import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProviderError } from '../../../common/errors.ts';
import type { TaskAck__Output, TaskResult } from '../../../proto/src/grpc.ts';
import type { Assignment } from '../../../proto/src/schemas/task.ts';
import type { AttemptRef, ResultReporter } from '../../../worker/src/grpc-link.ts';
import { createEchoProvider } from '../../../worker/src/providers/echo.ts';
import type { Provider } from '../../../worker/src/providers/types.ts';
import { TaskRunner } from '../../../worker/src/task-runner.ts';

interface Recorded {
  streamed: Array<{ ref: AttemptRef; chunks: string[]; final?: TaskResult }>;
  reported: TaskResult[];
}

/** The master's answer to `result`: taken. */
const accepted = (result: TaskResult): TaskAck__Output => ({
  accepted: true,
  reason: '',
  taskId: result.taskId ?? '',
  attempt: result.attempt ?? 0,
  final: true,
});

function fakeReporter(): ResultReporter & Recorded {
  const streamed: Recorded['streamed'] = [];
  const reported: TaskResult[] = [];
  return {
    streamed,
    reported,
    openStream(ref) {
      const entry: Recorded['streamed'][number] = { ref, chunks: [] };
      streamed.push(entry);
      return {
        get chunks() {
          return entry.chunks.length;
        },
        write: (text) => entry.chunks.push(text),
        finish: async (result) => {
          entry.final = result;
          return accepted(result);
        },
      };
    },
    report: async (result) => {
      reported.push(result);
      return accepted(result);
    },
    close: () => {},
  };
}

let seq = 0;
function assignment(overrides: Partial<Assignment> = {}): Assignment {
  seq += 1;
  return {
    taskId: `t${seq}`,
    attempt: 1,
    lease: `lease-${seq}`,
    model: 'echo',
    prompt: 'hi there',
    params: {},
    deadline: Date.now() + 60_000,
    queuedAt: Date.now(),
    ...overrides,
  };
}

function makeRunner(provider?: Provider, slots = 1) {
  const reporter = fakeReporter();
  const runner = new TaskRunner({
    workerId: 'w1',
    slots,
    models: ['echo'],
    provider: provider ?? createEchoProvider({ delayMs: 100, chunkSize: 3 }),
    reporter,
    log: pino({ level: 'silent' }),
  });
  return { runner, reporter };
}

describe('TaskRunner', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('streams chunks then a final result carrying the lease', async () => {
    const { runner, reporter } = makeRunner();
    const a = assignment();
    runner.accept(a);
    expect(runner.freeSlots()).toBe(0);
    expect(runner.active()).toEqual([{ taskId: a.taskId, attempt: 1, lease: a.lease }]);
    await vi.advanceTimersByTimeAsync(1_000);
    await runner.idle();
    const [entry] = reporter.streamed;
    expect(entry?.chunks.join('')).toBe('echo: hi there');
    expect(entry?.final).toMatchObject({
      taskId: a.taskId,
      lease: a.lease,
      workerId: 'w1',
      text: 'echo: hi there',
      model: 'echo',
    });
    expect(entry?.final?.error).toBeUndefined();
    expect(runner.freeSlots()).toBe(1);
  });

  it("hands the provider the attempt's start, the startedAt its result reports", async () => {
    let seen: number | undefined;
    const provider: Provider = {
      name: 'echo',
      generate: async (request) => {
        seen = request.startedAt;
        return { text: 'ok' };
      },
    };
    const { runner, reporter } = makeRunner(provider);
    await vi.advanceTimersByTimeAsync(7);
    runner.accept(assignment());
    await runner.idle();
    expect(seen).toBe(Date.now());
    expect(reporter.streamed[0]?.final?.startedAt).toBe(seen);
  });

  it('continues a half-streamed answer: streams what follows, reports the whole answer', async () => {
    const { runner, reporter } = makeRunner();
    runner.accept(assignment({ attempt: 2, continueFrom: 'echo: h' }));
    await vi.advanceTimersByTimeAsync(1_000);
    await runner.idle();
    const [entry] = reporter.streamed;
    expect(entry?.chunks.join('')).toBe('i there');
    expect(entry?.final?.text).toBe('echo: hi there');
  });

  it('counts the tokens itself, marked as estimated, when the provider gives no counts', async () => {
    vi.useRealTimers();
    const provider: Provider = {
      name: 'openai',
      generate: async () => ({ text: 'Queues hold work until a worker is free.' }),
    };
    const { runner, reporter } = makeRunner(provider);
    runner.accept(assignment({ prompt: 'What does a queue do?' }));
    await runner.idle();
    const usage = reporter.streamed[0]?.final?.usage;
    expect(usage?.estimated).toBe(true);
    expect(usage?.inputTokens).toBeGreaterThan(3);
    expect(usage?.outputTokens).toBeGreaterThan(5);
  });

  it('never hands a text to continue to a provider that cannot continue', async () => {
    let seen: string | undefined = 'unset';
    const provider: Provider = {
      name: 'echo',
      generate: async (request) => {
        seen = request.continueFrom;
        return { text: 'whole answer' };
      },
    };
    const { runner, reporter } = makeRunner(provider);
    runner.accept(assignment({ attempt: 2, continueFrom: 'whole' }));
    await runner.idle();
    expect(seen).toBeUndefined();
    expect(reporter.streamed[0]?.final?.text).toBe('whole answer');
  });

  it('keeps listing a finished attempt as active until its result is acknowledged, without its slot', async () => {
    const { runner, reporter } = makeRunner();
    let deliver: (ack: TaskAck__Output) => void = () => {};
    const open = reporter.openStream.bind(reporter);
    reporter.openStream = (ref) => {
      const stream = open(ref);
      // The master is unreachable: the final result waits for a connection.
      return { ...stream, finish: () => new Promise((resolve) => (deliver = resolve)) };
    };
    const a = assignment();
    runner.accept(a);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(runner.freeSlots()).toBe(1);
    expect(runner.active()).toEqual([{ taskId: a.taskId, attempt: 1, lease: a.lease }]);
    deliver(accepted({ taskId: a.taskId, attempt: a.attempt }));
    await runner.idle();
    expect(runner.active()).toEqual([]);
  });

  it('runs a duplicate delivery once', async () => {
    const { runner, reporter } = makeRunner(undefined, 2);
    const a = assignment();
    runner.accept(a);
    runner.accept({ ...a });
    await vi.advanceTimersByTimeAsync(1_000);
    await runner.idle();
    expect(reporter.streamed).toHaveLength(1);
    expect(reporter.reported).toHaveLength(0);
  });

  it('answers what it cannot take with an error code', async () => {
    const { runner, reporter } = makeRunner();
    runner.accept(assignment());
    runner.accept(assignment());
    runner.accept(assignment({ model: 'gpt-9' }));
    runner.accept(assignment({ deadline: Date.now() - 1 }));
    await vi.advanceTimersByTimeAsync(1_000);
    runner.setDraining(true);
    runner.accept(assignment());
    await runner.idle();
    expect(reporter.reported.map((r) => r.errorCode)).toEqual([
      'worker_full',
      'model_unsupported',
      'deadline_exceeded',
      'draining',
    ]);
    expect(reporter.reported.every((r) => r.error && r.lease)).toBe(true);
  });

  it('reports cancelled when the master cancels', async () => {
    const { runner, reporter } = makeRunner();
    const a = assignment();
    runner.accept(a);
    await vi.advanceTimersByTimeAsync(150);
    expect(runner.cancel(a.taskId)).toBe(true);
    await runner.idle();
    expect(reporter.streamed[0]?.final).toMatchObject({ errorCode: 'cancelled', lease: a.lease });
    expect(reporter.streamed[0]?.chunks).toEqual(['ech']);
  });

  it('reports deadline_exceeded when the deadline passes mid-task', async () => {
    const { runner, reporter } = makeRunner();
    runner.accept(assignment({ deadline: Date.now() + 250 }));
    await vi.advanceTimersByTimeAsync(300);
    await runner.idle();
    expect(reporter.streamed[0]?.final?.errorCode).toBe('deadline_exceeded');
  });

  it('never reports the caller key in a provider error', async () => {
    const failing: Provider = {
      name: 'gemini',
      generate: async (request) => {
        throw new ProviderError(`upstream said no to ${request.apiKey}`);
      },
    };
    const { runner, reporter } = makeRunner(failing);
    runner.accept(assignment({ apiKey: 'user-secret-key' }));
    await runner.idle();
    const final = reporter.streamed[0]?.final;
    expect(final?.errorCode).toBe('provider_error');
    expect(final?.error).not.toContain('user-secret-key');
  });
});
