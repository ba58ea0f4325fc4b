/**
 * Per-session outboxes: every task event for a session gets the next sequence
 * number and is kept until the session's sockets have acked it, so a client
 * that reconnects is sent exactly what it missed. At most one terminal event
 * per task is ever recorded, and a finished task's chunks are dropped (its
 * terminal event carries the whole answer), which keeps outboxes small.
 *
 * Outboxes live in master memory. The epoch names this master's lifetime: a
 * client from another epoch cannot be replayed to and is resynced from the
 * store instead (see socket-server.ts).
 */
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import {
  type TaskEventName,
  type TaskEventPayloads,
  TERMINAL_TASK_EVENTS,
} from '../../../proto/src/socket-events.ts';

/** Events kept per session (up to a tenth more between drops); beyond it the oldest go, and a late client resyncs. */
export const OUTBOX_MAX_EVENTS = 5_000;
const OUTBOX_DROP_BATCH = OUTBOX_MAX_EVENTS / 10;
/** A session with no hello, event or ack for this long is forgotten. */
export const OUTBOX_IDLE_MS = 30 * 60_000;
/** Terminal task ids remembered per session, so a task never ends twice. */
const MAX_TERMINAL_IDS = 20_000;

export interface OutboxEntry<K extends TaskEventName = TaskEventName> {
  seq: number;
  name: K;
  taskId: string;
  payload: TaskEventPayloads[K];
  /** A chunk superseded by its task's terminal event: kept in place, never replayed. */
  dead?: boolean;
}

class SessionOutbox {
  entries: OutboxEntry[] = [];
  /** Lowest seq a replay can start after (everything at or below it may be gone). */
  floor: number;
  /** taskId → seq of its terminal event; the oldest go past MAX_TERMINAL_IDS. */
  readonly terminal = new LRUCache<string, number>({ max: MAX_TERMINAL_IDS });
  /** taskId → its chunk events still held, to retire them when the task ends. */
  readonly chunks = new Map<string, OutboxEntry[]>();
  lastActive: number;

  constructor(now: number, floor: number) {
    this.lastActive = now;
    this.floor = floor;
  }
}

const taskIdOf = (name: TaskEventName, payload: TaskEventPayloads[TaskEventName]): string =>
  name === 'task:completed' || name === 'task:failed'
    ? (payload as TaskEventPayloads['task:completed']).id
    : (payload as TaskEventPayloads['task:queued']).taskId;

export class Outboxes {
  readonly epoch = randomUUID();
  private readonly sessions = new Map<string, SessionOutbox>();
  /**
   * One counter for every session of the epoch: a session forgotten and made
   * anew never reuses a number its client already holds (it resyncs instead).
   */
  private nextSeq = 1;

  /**
   * Records an event; undefined when it must not be sent (a second terminal
   * event for the same task, or any event after the terminal one).
   */
  append<K extends TaskEventName>(
    sessionId: string,
    name: K,
    payload: TaskEventPayloads[K],
  ): OutboxEntry<K> | undefined {
    const box = this.session(sessionId);
    const taskId = taskIdOf(name, payload);
    if (box.terminal.has(taskId)) return undefined;
    box.lastActive = Date.now();
    const entry: OutboxEntry<K> = { seq: this.nextSeq++, name, taskId, payload };
    if (TERMINAL_TASK_EVENTS.includes(name)) {
      box.terminal.set(taskId, entry.seq);
      // The terminal event supersedes the stream: replay it instead of every chunk.
      for (const chunk of box.chunks.get(taskId) ?? []) chunk.dead = true;
      box.chunks.delete(taskId);
    } else if (name === 'task:chunk') {
      const held = box.chunks.get(taskId);
      if (held) held.push(entry as OutboxEntry);
      else box.chunks.set(taskId, [entry as OutboxEntry]);
    }
    box.entries.push(entry as OutboxEntry);
    if (box.entries.length > OUTBOX_MAX_EVENTS + OUTBOX_DROP_BATCH) {
      // Dropped in batches: shifting the array on every event would cost O(n) each time.
      const dropped = box.entries.splice(0, box.entries.length - OUTBOX_MAX_EVENTS);
      box.floor = Math.max(box.floor, dropped.at(-1)?.seq ?? 0);
    }
    return entry;
  }

  /** Seq of the task's terminal event in this session, if it had one this epoch. */
  terminalSeq(sessionId: string, taskId: string): number | undefined {
    return this.sessions.get(sessionId)?.terminal.get(taskId);
  }

  /** The seq the next recorded event will get. */
  peekSeq(): number {
    return this.nextSeq;
  }

  /** A seq for an event sent to one socket only and not recorded (resync answers). */
  stamp(sessionId: string): number {
    this.session(sessionId);
    return this.nextSeq++;
  }

  /**
   * The events after `lastSeq`, or undefined when they cannot all be given
   * (some were dropped, or the client counts in another epoch).
   */
  replay(sessionId: string, epoch: string, lastSeq: number): OutboxEntry[] | undefined {
    if (epoch !== this.epoch) return undefined;
    const box = this.session(sessionId);
    if (lastSeq < box.floor || lastSeq >= this.nextSeq) return undefined;
    return box.entries.filter((e) => e.seq > lastSeq && !e.dead);
  }

  /** Every connected socket of the session has processed up to `seq`: older events may go. */
  trim(sessionId: string, seq: number): void {
    const box = this.sessions.get(sessionId);
    if (!box) return;
    box.lastActive = Date.now();
    const keepFrom = box.entries.findIndex((e) => e.seq > seq);
    const removed = keepFrom === -1 ? box.entries.length : keepFrom;
    if (removed === 0) return;
    box.floor = Math.max(box.floor, Math.min(seq, this.nextSeq - 1));
    box.entries.splice(0, removed);
  }

  /** Marks a session in use; sessions idle past OUTBOX_IDLE_MS are forgotten. */
  touch(sessionId: string): void {
    const now = Date.now();
    this.session(sessionId).lastActive = now;
    for (const [id, box] of this.sessions) {
      if (now - box.lastActive > OUTBOX_IDLE_MS) this.sessions.delete(id);
    }
  }

  /** Events held across all sessions (for metrics). */
  size(): number {
    let n = 0;
    for (const box of this.sessions.values()) n += box.entries.length;
    return n;
  }

  private session(sessionId: string): SessionOutbox {
    let box = this.sessions.get(sessionId);
    if (!box) {
      box = new SessionOutbox(Date.now(), this.nextSeq - 1);
      this.sessions.set(sessionId, box);
    }
    return box;
  }
}
