import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaseTable } from '../../../master/src/dispatch/leases.ts';
import { FleetControl } from '../../../master/src/fleet/fleet-control.ts';
import type { WorkerRegistry } from '../../../master/src/registry/registry.ts';
import type { WorkerRecord } from '../../../master/src/registry/worker-record.ts';
import type { Control } from '../../../proto/src/schemas/task.ts';

const record = (id: string, kind: 'cpu' | 'gpu' = 'cpu'): WorkerRecord => ({
  status: {
    state: 'online',
    id,
    kind,
    models: ['echo'],
    providers: ['echo'],
    slots: 1,
    labels: {},
    weight: 1,
    version: 'test',
    host: 'h',
    heartbeatMs: 1_000,
    startedAt: 1,
  },
  state: 'online',
  lastSeen: Date.now(),
  active: new Map(),
  holds: new Set(),
});

describe('FleetControl', () => {
  let registry: EventEmitter & {
    get(id: string): WorkerRecord | undefined;
    list(): WorkerRecord[];
  };
  let sent: Array<{ workerId: string; control: Control }>;
  let fleet: FleetControl;
  const records = new Map<string, WorkerRecord>();

  beforeEach(() => {
    vi.useFakeTimers();
    records.clear();
    records.set('w1', record('w1'));
    records.set('g1', record('g1', 'gpu'));
    registry = Object.assign(new EventEmitter(), {
      get: (id: string) => records.get(id),
      list: () => [...records.values()],
    });
    sent = [];
    fleet = new FleetControl({
      registry: registry as unknown as WorkerRegistry,
      lifecycle: {
        tellWorker: (workerId, control) => sent.push({ workerId, control }),
        end: async () => {
          throw new Error('no tasks here');
        },
      },
      leases: new LeaseTable(),
      log: pino({ level: 'silent' }),
      ackTimeoutMs: 5_000,
    });
    fleet.start();
  });
  afterEach(() => {
    fleet.stop();
    vi.useRealTimers();
  });

  const ackLast = (ok = true, error?: string) => {
    const control = sent.at(-1)?.control as { id: string };
    registry.emit('ack', sent.at(-1)?.workerId, { id: control.id, ok, error });
  };

  it('stops assigning to a drained worker at once, and answers once it acknowledges', async () => {
    const drained = fleet.drain('w1', 'ops');
    expect(fleet.admits('w1')).toBe(false);
    expect(sent[0]?.control).toMatchObject({ type: 'drain', id: expect.any(String) });
    ackLast();
    await expect(drained).resolves.toMatchObject({ id: 'w1' });
    expect(fleet.state().drained).toMatchObject([{ workerId: 'w1', by: 'ops' }]);
  });

  it('gives up after the timeout with a 504 error, the drain kept', async () => {
    const drained = fleet.drain('w1', 'ops');
    const caught = drained.catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await caught).toMatchObject({ code: 'not_acknowledged' });
    expect(fleet.admits('w1')).toBe(false);
  });

  it('passes on a refusal, and knows unknown and offline workers', async () => {
    const config = fleet.configure('w1', { slots: 2 });
    ackLast(false, 'no such model');
    await expect(config).rejects.toMatchObject({ code: 'worker_refused' });
    await expect(fleet.drain('nobody', 'ops')).rejects.toMatchObject({ code: 'not_found' });
    (records.get('w1') as WorkerRecord).state = 'offline';
    await expect(fleet.resume('w1')).rejects.toMatchObject({ code: 'worker_offline' });
  });

  it('drains a worker that joins under a cordon, and stops and resumes all dispatch', async () => {
    const cordon = fleet.cordon({ kind: 'gpu' }, 'ops');
    ackLast();
    expect(await cordon).toEqual([{ workerId: 'g1', ok: true }]);
    records.set('g2', record('g2', 'gpu'));
    registry.emit('online', 'g2');
    expect(fleet.admits('g2')).toBe(false);
    expect(sent.at(-1)).toEqual({ workerId: 'g2', control: { type: 'drain' } });

    const opened = vi.fn();
    fleet.on('open', opened);
    await fleet.stopAll('keep', 'ops');
    expect(fleet.stopped()).toBe(true);
    expect(fleet.resumeAll('ops').dispatch).toBe('running');
    expect(opened).toHaveBeenCalledTimes(1);
  });
});
