/**
 * common/flota-process.ts: childExited() settles for a child that never
 * started (a failed spawn emits 'error' and no 'exit') and never rejects;
 * stopChild() neither hangs nor throws for such a child, and rejects — rather
 * than waiting forever — when a running child cannot be signalled.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { childExited, hasExited, stopChild } from '../../../common/flota-process.ts';

/** The options spawnRole() uses, for an executable that does not exist. */
function spawnMissing(): ChildProcess {
  return spawn('/nonexistent/flota-test-binary', ['worker'], {
    env: {},
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    detached: true,
  });
}

/** A ChildProcess stand-in: running (it has a pid) until it emits 'exit'. */
class FakeChild extends EventEmitter {
  pid: number | undefined = 4242;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  signals: string[] = [];
  /** As ChildProcess.kill() does on EPERM: emits 'error' synchronously. */
  kill(signal: string): boolean {
    this.signals.push(signal);
    const err = Object.assign(new Error('kill EPERM'), { code: 'EPERM', syscall: 'kill' });
    this.emit('error', err);
    return false;
  }
  exit(code: number): void {
    this.exitCode = code;
    this.emit('exit', code, null);
  }
}
const asChild = (fake: FakeChild) => fake as unknown as ChildProcess;

describe('childExited', () => {
  it('resolves for a child whose spawn fails, and leaves no listeners behind', async () => {
    const child = spawnMissing();
    expect(child.pid).toBeUndefined();
    await expect(childExited(child)).resolves.toBeUndefined();
    expect(hasExited(child)).toBe(true);
    expect(child.listenerCount('error')).toBe(0);
    expect(child.listenerCount('exit')).toBe(0);
  });

  it('resolves when a child that never started emits error', async () => {
    const fake = new FakeChild();
    fake.pid = undefined;
    const exited = childExited(asChild(fake));
    fake.emit('error', Object.assign(new Error('spawn EAGAIN'), { code: 'EAGAIN' }));
    await expect(exited).resolves.toBeUndefined();
    expect(fake.listenerCount('error')).toBe(0);
  });

  it('keeps waiting for the exit of a running child whose kill failed', async () => {
    const fake = new FakeChild();
    let settled = false;
    const exited = childExited(asChild(fake)).then(() => {
      settled = true;
    });
    fake.kill('SIGTERM');
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    fake.exit(0);
    await exited;
    expect(settled).toBe(true);
    expect(fake.listenerCount('error')).toBe(0);
    expect(fake.listenerCount('exit')).toBe(0);
  });

  it('resolves at once for a child that has exited', async () => {
    const fake = new FakeChild();
    fake.exit(0);
    await expect(childExited(asChild(fake))).resolves.toBeUndefined();
  });
});

describe('stopChild', () => {
  it('resolves for a child whose spawn fails, without signalling it', async () => {
    await expect(stopChild(spawnMissing(), 50)).resolves.toBeUndefined();
  });

  it('rejects, rather than hanging, when a running child cannot be signalled', async () => {
    const fake = new FakeChild();
    await expect(stopChild(asChild(fake), 60_000)).rejects.toThrow('kill EPERM');
    expect(fake.signals).toEqual(['SIGTERM']);
  });

  it('stops a running child with SIGTERM', async () => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      stdio: 'ignore',
    });
    await stopChild(child, 60_000);
    expect(child.signalCode).toBe('SIGTERM');
  });
});
