/**
 * What one simulated browser session saw, task by task, and the verdicts
 * drawn from it: exactly one answer per completed task, each matching its own
 * prompt, none from a revoked attempt, no stale chunks, no task lost; and the
 * text a browser shows while it streams (web/js/task-reducer.js's rules:
 * a lost attempt's text stays, the next one continues it or starts over) is
 * always the start of the answer, never a repeated prefix.
 */
import type { TaskView } from '../../../proto/src/schemas/task.ts';

export interface Submission {
  clientId: string;
  prompt: string;
  /** The answer the echo provider must give: `echo: <prompt>`. */
  expected: string;
  taskId?: string;
  /** Every task id the master ever named for this clientId (ack or task:queued); 1 expected. */
  taskIds: Set<string>;
  firstSentAt?: number;
  ackedAt?: number;
  sends: number;
  errors: string[];
  /** Set when the client gave up resending (bounded). */
  abandoned?: string;
}

export interface ChunkSeen {
  attempt: number;
  seq: number;
  text: string;
}

export interface TaskTrack {
  taskId: string;
  events: number;
  /** Highest attempt any event named so far. */
  maxAttempt: number;
  /** Highest attempt a `task:retrying` declared lost. */
  lostAttempt: number;
  retrying: number;
  chunks: ChunkSeen[];
  /** Chunks of an attempt already superseded (lost, or lower than one seen) when they arrived. */
  staleChunks: number;
  completed: number;
  failed: number;
  /** outboxSeq of every terminal event processed (after filtering replays). */
  terminalSeqs: number[];
  /** The first terminal event processed. */
  terminal?: { view: TaskView; at: number; staleAttempt: boolean };
  /** The text a browser shows now, as the reducer builds it. */
  shown: string;
  /** The attempt whose chunks extend `shown`, the next chunk it takes, the last attempt begun. */
  shownAttempt: number;
  nextSeq: number;
  begun: number;
  /** What was shown just before each reset (a new attempt, the final answer); each must start the answer. */
  shownBefore: string[];
  /** New attempts that continued the text (`continuesFrom`), and that started over after some. */
  continued: number;
  restarted: number;
}

export interface TaskEvent {
  taskId?: string;
  id?: string;
  clientId?: string;
  attempt?: number;
  seq?: number;
  text?: string;
  continuesFrom?: string;
  outboxSeq?: number;
}

export interface LedgerVerdict {
  submitted: number;
  acked: number;
  /** Submissions the master never accepted (gave up, or still unanswered at the end). */
  unaccepted: Submission[];
  completed: number;
  failed: number;
  failedReasons: Record<string, number>;
  /** Terminal events beyond the first for one task (each with its own outboxSeq). */
  duplicates: number;
  /** Acked, never terminal at this client. */
  lost: Submission[];
  /** Completed answers that do not match the task's own prompt. */
  mismatchedAnswers: string[];
  /** Chunks whose text is not the matching slice of the task's answer. */
  mismatchedChunks: number;
  staleChunks: number;
  /** Completed with an attempt that had been declared lost or superseded. */
  revokedAnswers: string[];
  /** A clientId that yielded more than one task id (idempotent submit broken). */
  doubleSubmits: string[];
  /** Task events about ids that belong to no submission of this session. */
  foreignTasks: string[];
  submitSends: number;
  retrying: number;
  /** Attempts that continued a lost attempt's text / started over after one had streamed. */
  continued: number;
  restarted: number;
  /** Texts a browser would have shown that are not the start of the task's answer. */
  brokenDisplays: string[];
}

export class TaskLedger {
  readonly submissions = new Map<string, Submission>();
  readonly tasks = new Map<string, TaskTrack>();
  /** Receive times of every accepted `task:completed`, for recovery times. */
  readonly completionTimes: number[] = [];

  constructor(private readonly chunkSize: number) {}

  /**
   * A chunk holds whole pieces of its answer, in place: a worker joins the
   * pieces of one coalescing window (CHUNK_COALESCE_MS), each chunk holds at
   * least one, so chunk `seq` starts at piece `seq` or later.
   */
  private fits(c: ChunkSeen, expected: string): boolean {
    const size = this.chunkSize;
    const whole = (at: number) =>
      c.text.length % size === 0 || at + c.text.length === expected.length;
    for (let at = c.seq * size; at < expected.length; at += size) {
      if (expected.startsWith(c.text, at) && c.text !== '' && whole(at)) return true;
    }
    return false;
  }

  add(clientId: string, prompt: string): Submission {
    const sub: Submission = {
      clientId,
      prompt,
      expected: `echo: ${prompt}`,
      taskIds: new Set(),
      sends: 0,
      errors: [],
    };
    this.submissions.set(clientId, sub);
    return sub;
  }

  acked(sub: Submission, taskId: string, at: number): void {
    sub.taskId ??= taskId;
    sub.taskIds.add(taskId);
    sub.ackedAt ??= at;
  }

  /** Task ids this session still waits for (acked, not terminal). */
  pending(): string[] {
    const ids: string[] = [];
    for (const sub of this.submissions.values()) {
      if (sub.taskId && !this.tasks.get(sub.taskId)?.terminal) ids.push(sub.taskId);
    }
    return ids;
  }

  /** Every acked submission has had its terminal event. */
  settled(): boolean {
    for (const sub of this.submissions.values()) {
      if (sub.abandoned) continue;
      if (!sub.taskId || !this.tasks.get(sub.taskId)?.terminal) return false;
    }
    return true;
  }

  /** Records one processed (not filtered) task event. */
  record(name: string, event: TaskEvent, at: number): void {
    const taskId = name === 'task:completed' || name === 'task:failed' ? event.id : event.taskId;
    if (!taskId) return;
    const track = this.track(taskId);
    track.events++;
    const attempt = event.attempt ?? 0;
    if (name === 'task:queued' && event.clientId) {
      this.submissions.get(event.clientId)?.taskIds.add(taskId);
    } else if (name === 'task:retrying') {
      track.retrying++;
      track.lostAttempt = Math.max(track.lostAttempt, attempt);
      // The text stays; the next attempt's chunks start at seq 0.
      track.shownAttempt = Math.max(track.shownAttempt, attempt + 1);
      track.nextSeq = 0;
    } else if (name === 'task:assigned') {
      this.assigned(track, attempt, event.continuesFrom);
    } else if (name === 'task:chunk') {
      if (attempt < track.maxAttempt || attempt <= track.lostAttempt) track.staleChunks++;
      track.chunks.push({ attempt, seq: event.seq ?? -1, text: event.text ?? '' });
      this.shownChunk(track, attempt, event.seq ?? -1, event.text ?? '');
    } else if (name === 'task:completed' || name === 'task:failed') {
      const view = event as unknown as TaskView;
      if (name === 'task:completed') {
        track.completed++;
        this.completionTimes.push(at);
      } else {
        track.failed++;
      }
      track.terminalSeqs.push(event.outboxSeq ?? -1);
      if (!track.terminal) track.shownBefore.push(track.shown);
      const staleAttempt =
        name === 'task:completed' &&
        (view.attempt < track.maxAttempt || view.attempt <= track.lostAttempt);
      track.terminal ??= { view, at, staleAttempt };
    }
    track.maxAttempt = Math.max(track.maxAttempt, attempt);
  }

  /** A new attempt continues the shown text or starts over; a repeated one changes nothing. */
  private assigned(track: TaskTrack, attempt: number, continuesFrom: string | undefined): void {
    if (attempt <= track.begun) return;
    track.shownBefore.push(track.shown);
    if (continuesFrom !== undefined) track.continued++;
    else if (attempt > 1 && track.shown !== '') track.restarted++;
    track.shown = continuesFrom ?? '';
    track.begun = attempt;
    track.shownAttempt = attempt;
    track.nextSeq = 0;
  }

  /** Only the next chunk of the current attempt extends the text (a gap waits for the answer). */
  private shownChunk(track: TaskTrack, attempt: number, seq: number, text: string): void {
    if (attempt < track.shownAttempt) return;
    if (attempt > track.shownAttempt) {
      track.shownBefore.push(track.shown);
      track.shown = '';
      track.shownAttempt = attempt;
      track.begun = attempt;
      track.nextSeq = 0;
    }
    if (seq !== track.nextSeq) return;
    track.shown += text;
    track.nextSeq++;
  }

  verdict(): LedgerVerdict {
    const v: LedgerVerdict = {
      submitted: this.submissions.size,
      acked: 0,
      unaccepted: [],
      completed: 0,
      failed: 0,
      failedReasons: {},
      duplicates: 0,
      lost: [],
      mismatchedAnswers: [],
      mismatchedChunks: 0,
      staleChunks: 0,
      revokedAnswers: [],
      doubleSubmits: [],
      foreignTasks: [],
      submitSends: 0,
      retrying: 0,
      continued: 0,
      restarted: 0,
      brokenDisplays: [],
    };
    const owned = new Set<string>();
    for (const sub of this.submissions.values()) {
      v.submitSends += sub.sends;
      for (const id of sub.taskIds) owned.add(id);
      if (sub.taskIds.size > 1) v.doubleSubmits.push(`${sub.clientId}: ${[...sub.taskIds]}`);
      if (!sub.taskId) {
        v.unaccepted.push(sub);
        continue;
      }
      v.acked++;
      const track = this.tasks.get(sub.taskId);
      if (!track?.terminal) {
        v.lost.push(sub);
        continue;
      }
      v.duplicates += track.completed + track.failed - 1;
      v.staleChunks += track.staleChunks;
      v.retrying += track.retrying;
      v.continued += track.continued;
      v.restarted += track.restarted;
      for (const shown of [...track.shownBefore, track.shown]) {
        if (!sub.expected.startsWith(shown)) {
          v.brokenDisplays.push(`${sub.taskId}: showed ${JSON.stringify(shown.slice(0, 120))}`);
          break;
        }
      }
      v.mismatchedChunks += track.chunks.filter((c) => !this.fits(c, sub.expected)).length;
      const { view, staleAttempt } = track.terminal;
      if (view.state === 'completed') {
        v.completed++;
        if (view.result !== sub.expected) {
          v.mismatchedAnswers.push(`${sub.taskId}: ${JSON.stringify(view.result)}`);
        }
        if (staleAttempt) {
          v.revokedAnswers.push(
            `${sub.taskId}: answer of attempt ${view.attempt} after attempt ${track.maxAttempt} / lost ${track.lostAttempt}`,
          );
        }
      } else {
        v.failed++;
        const reason = `${view.state}: ${normaliseReason(view.error)}`;
        v.failedReasons[reason] = (v.failedReasons[reason] ?? 0) + 1;
      }
    }
    for (const id of this.tasks.keys()) if (!owned.has(id)) v.foreignTasks.push(id);
    return v;
  }

  private track(taskId: string): TaskTrack {
    let track = this.tasks.get(taskId);
    if (!track) {
      track = {
        taskId,
        events: 0,
        maxAttempt: 0,
        lostAttempt: 0,
        retrying: 0,
        chunks: [],
        staleChunks: 0,
        shown: '',
        shownAttempt: 0,
        nextSeq: 0,
        begun: 0,
        shownBefore: [],
        continued: 0,
        restarted: 0,
        completed: 0,
        failed: 0,
        terminalSeqs: [],
      };
      this.tasks.set(taskId, track);
    }
    return track;
  }
}

/** Failure reasons without ids and numbers, so equal causes count together. */
export function normaliseReason(error: string | undefined): string {
  if (!error) return '(no reason given)';
  return error
    .replace(/\b(?:any|gpu)\.[^\s.]+\.[A-Za-z0-9_~-]{16,}/g, '<task>')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, '<uuid>')
    .replace(/\d+/g, 'N')
    .slice(0, 120);
}
