/**
 * The chaos verdicts themselves: a ledger fed with hand-made event sequences
 * must flag each kind of violation, or the chaos run's zeros prove nothing.
 */
import { describe, expect, it } from 'vitest';
import type { TaskView } from '../../proto/src/schemas/task.ts';
import { normaliseReason, type Submission, TaskLedger } from './support/task-ledger.ts';

const CHUNK = 4;
let seq = 0;

function view(id: string, over: Partial<TaskView>): TaskView & { outboxSeq: number } {
  return {
    id,
    state: 'completed',
    model: 'echo',
    priority: 0,
    requires: {},
    attempt: 1,
    timings: { submittedAt: 1 },
    ...over,
    outboxSeq: ++seq,
  };
}

/** A submission acked as `taskId`, streamed in CHUNK-sized pieces by `attempt`. */
function streamed(ledger: TaskLedger, clientId: string, taskId: string, attempt = 1): Submission {
  const sub = ledger.add(clientId, `prompt of ${clientId}`);
  ledger.record('task:queued', { taskId, clientId, outboxSeq: ++seq }, 1);
  ledger.acked(sub, taskId, 2);
  ledger.record('task:assigned', { taskId, attempt, outboxSeq: ++seq }, 3);
  for (let at = 0, s = 0; at < sub.expected.length; at += CHUNK, s++) {
    const text = sub.expected.slice(at, at + CHUNK);
    ledger.record('task:chunk', { taskId, attempt, seq: s, text, outboxSeq: ++seq }, 4);
  }
  return sub;
}

describe('TaskLedger verdict', () => {
  it('passes a task that streamed and completed once with its own answer', () => {
    const ledger = new TaskLedger(CHUNK);
    const sub = streamed(ledger, 'c1', 't1');
    ledger.record('task:completed', view('t1', { result: sub.expected }), 5);
    expect(ledger.settled()).toBe(true);
    expect(ledger.verdict()).toMatchObject({
      submitted: 1,
      acked: 1,
      completed: 1,
      duplicates: 0,
      lost: [],
      staleChunks: 0,
      mismatchedChunks: 0,
      mismatchedAnswers: [],
      revokedAnswers: [],
      doubleSubmits: [],
      foreignTasks: [],
    });
    expect(ledger.completionTimes).toEqual([5]);
  });

  it('counts a second terminal event for the same task as a duplicate', () => {
    const ledger = new TaskLedger(CHUNK);
    const sub = streamed(ledger, 'c1', 't1');
    ledger.record('task:completed', view('t1', { result: sub.expected }), 5);
    ledger.record('task:completed', view('t1', { result: sub.expected }), 6);
    expect(ledger.verdict().duplicates).toBe(1);
  });

  it('flags chunks and answers of an attempt declared lost', () => {
    const ledger = new TaskLedger(CHUNK);
    const sub = streamed(ledger, 'c1', 't1', 1);
    ledger.record('task:retrying', { taskId: 't1', attempt: 1, outboxSeq: ++seq }, 5);
    ledger.record('task:chunk', { taskId: 't1', attempt: 1, seq: 0, text: 'echo' }, 6);
    ledger.record('task:assigned', { taskId: 't1', attempt: 2, outboxSeq: ++seq }, 7);
    ledger.record('task:completed', view('t1', { result: sub.expected, attempt: 1 }), 8);
    const verdict = ledger.verdict();
    expect(verdict.staleChunks).toBe(1);
    expect(verdict.retrying).toBe(1);
    expect(verdict.revokedAnswers).toHaveLength(1);
  });

  it('flags answers and chunks that belong to another prompt', () => {
    const ledger = new TaskLedger(CHUNK);
    ledger.add('c1', 'mine');
    const sub = ledger.submissions.get('c1') as Submission;
    ledger.acked(sub, 't1', 1);
    ledger.record('task:chunk', { taskId: 't1', attempt: 1, seq: 0, text: 'xxxx' }, 2);
    ledger.record('task:completed', view('t1', { result: 'echo: theirs' }), 3);
    const verdict = ledger.verdict();
    expect(verdict.mismatchedChunks).toBe(1);
    expect(verdict.mismatchedAnswers).toEqual(['t1: "echo: theirs"']);
  });

  it('takes chunks that joined whole pieces in place, and flags one out of place', () => {
    const ledger = new TaskLedger(CHUNK);
    ledger.add('c1', 'abcdefghij');
    const sub = ledger.submissions.get('c1') as Submission;
    ledger.acked(sub, 't1', 1);
    // "echo: abcdefghij" in pieces of 4: "echo", ": ab", "cdef", "ghij".
    ledger.record(
      'task:chunk',
      { taskId: 't1', attempt: 1, seq: 0, text: 'echo: ab', outboxSeq: ++seq },
      2,
    );
    ledger.record(
      'task:chunk',
      { taskId: 't1', attempt: 1, seq: 1, text: 'cdefghij', outboxSeq: ++seq },
      3,
    );
    ledger.record(
      'task:chunk',
      { taskId: 't1', attempt: 1, seq: 2, text: 'echo', outboxSeq: ++seq },
      4,
    );
    ledger.record('task:completed', view('t1', { result: sub.expected }), 5);
    expect(ledger.verdict().mismatchedChunks).toBe(1);
  });

  it('reports acked tasks that never ended as lost, and unacked ones as unaccepted', () => {
    const ledger = new TaskLedger(CHUNK);
    streamed(ledger, 'c1', 't1');
    const never = ledger.add('c2', 'never acked');
    never.abandoned = 'ack timeout';
    expect(ledger.settled()).toBe(false);
    expect(ledger.pending()).toEqual(['t1']);
    const verdict = ledger.verdict();
    expect(verdict.lost.map((s) => s.clientId)).toEqual(['c1']);
    expect(verdict.unaccepted.map((s) => s.clientId)).toEqual(['c2']);
  });

  it('flags a clientId that became two tasks, and events about tasks nobody submitted', () => {
    const ledger = new TaskLedger(CHUNK);
    const sub = streamed(ledger, 'c1', 't1');
    ledger.record('task:queued', { taskId: 't1-again', clientId: 'c1', outboxSeq: ++seq }, 5);
    ledger.record('task:chunk', { taskId: 'stranger', attempt: 1, seq: 0, text: 'x' }, 6);
    ledger.record('task:completed', view('t1', { result: sub.expected }), 7);
    const verdict = ledger.verdict();
    expect(verdict.doubleSubmits).toEqual(['c1: t1,t1-again']);
    expect(verdict.foreignTasks).toEqual(['stranger']);
  });

  it('counts failures by their reason, ids and numbers left out', () => {
    const ledger = new TaskLedger(CHUNK);
    streamed(ledger, 'c1', 't1');
    streamed(ledger, 'c2', 't2');
    streamed(ledger, 'c3', 't3');
    ledger.record(
      'task:failed',
      view('t1', { state: 'failed', error: 'gave up after 8 attempts' }),
      5,
    );
    ledger.record(
      'task:failed',
      view('t2', { state: 'failed', error: 'gave up after 9 attempts' }),
      5,
    );
    ledger.record('task:failed', view('t3', { state: 'cancelled' }), 5);
    expect(ledger.verdict().failedReasons).toEqual({
      'failed: gave up after N attempts': 2,
      'cancelled: (no reason given)': 1,
    });
    expect(
      normaliseReason('task any.echo.zU0mClRXC3LuoScb6DmMeD9Q7KKJeBnF timed out after 30000 ms'),
    ).toBe('task <task> timed out after N ms');
  });
  it('passes a continued answer and flags one that repeats its prefix', () => {
    const ledger = new TaskLedger(CHUNK);
    /** Attempt 1 streams 8 characters and dies; attempt 2 continues from `from`. */
    const continued = (clientId: string, taskId: string, from: (text: string) => string) => {
      const sub = ledger.add(clientId, `prompt of ${clientId}`);
      ledger.record('task:queued', { taskId, clientId, outboxSeq: ++seq }, 1);
      ledger.acked(sub, taskId, 2);
      ledger.record('task:assigned', { taskId, attempt: 1, outboxSeq: ++seq }, 3);
      const head = sub.expected.slice(0, 8);
      ledger.record(
        'task:chunk',
        { taskId, attempt: 1, seq: 0, text: head.slice(0, 4), outboxSeq: ++seq },
        4,
      );
      ledger.record(
        'task:chunk',
        { taskId, attempt: 1, seq: 1, text: head.slice(4), outboxSeq: ++seq },
        4,
      );
      ledger.record('task:retrying', { taskId, attempt: 1, outboxSeq: ++seq }, 5);
      const continuesFrom = from(head);
      ledger.record('task:assigned', { taskId, attempt: 2, continuesFrom, outboxSeq: ++seq }, 6);
      const rest = sub.expected.slice(8);
      ledger.record('task:chunk', { taskId, attempt: 2, seq: 0, text: rest, outboxSeq: ++seq }, 7);
      ledger.record('task:completed', view(taskId, { result: sub.expected, attempt: 2 }), 8);
    };
    continued('c1', 't1', (head) => head);
    expect(ledger.verdict()).toMatchObject({ continued: 1, restarted: 0, brokenDisplays: [] });
    // A continuation that carries the text twice shows a repeated prefix.
    continued('c2', 't2', (head) => `${head}${head}`);
    const verdict = ledger.verdict();
    expect(verdict.continued).toBe(2);
    expect(verdict.brokenDisplays).toHaveLength(1);
    expect(verdict.brokenDisplays[0]).toMatch(/^t2: showed/);
  });
});
