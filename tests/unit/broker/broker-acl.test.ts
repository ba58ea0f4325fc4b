import { describe, expect, it } from 'vitest';
import {
  type BrokerIdentity,
  decideConnect,
  mayReceive,
  maySubscribe,
  publishRefusal,
  RetainedTopics,
} from '../../../master/src/broker/broker-acl.ts';
import type { WorkerCheck } from '../../../master/src/security/worker-credentials.ts';
import { createTopics } from '../../../proto/src/topics.ts';

const topics = createTopics();
const master: BrokerIdentity = { kind: 'master' };
const observer: BrokerIdentity = { kind: 'observer' };
const worker: BrokerIdentity = { kind: 'worker', workerId: 'w-1' };

/** Accepts `good-<id>` as the credential of `<id>`, and nothing else. */
const verifier = {
  masterPassword: 'master-secret',
  checkCredential(token: string, workerId: string): WorkerCheck {
    if (token === 'revoked') return { ok: false, reason: 'revoked' };
    if (!token.startsWith('good-')) return { ok: false, reason: 'bad_signature' };
    return token === `good-${workerId}`
      ? { ok: true, workerId }
      : { ok: false, reason: 'wrong_worker' };
  },
};
const connect = (clientId: string, username?: string, password?: string) =>
  decideConnect(
    { clientId, username, password: password === undefined ? undefined : Buffer.from(password) },
    verifier,
  );

describe('decideConnect', () => {
  it('knows the master by its password', () => {
    expect(connect('flota-master-1', '_master', 'master-secret')).toEqual({
      ok: true,
      identity: master,
    });
    expect(connect('flota-master-1', '_master', 'guess')).toMatchObject({
      ok: false,
      returnCode: 4,
    });
    expect(connect('flota-master-1', '_master')).toMatchObject({ ok: false, returnCode: 4 });
  });

  it('knows a worker by its credential, on its own client id only', () => {
    expect(connect('flota-worker-w-1', 'w-1', 'good-w-1')).toEqual({ ok: true, identity: worker });
    expect(connect('flota-worker-w-2', 'w-1', 'good-w-1')).toMatchObject({
      ok: false,
      returnCode: 5,
    });
    expect(connect('flota-worker-w-1', 'w-1', 'good-w-2')).toMatchObject({
      ok: false,
      returnCode: 4,
      reason: expect.stringContaining('wrong_worker'),
    });
    expect(connect('flota-worker-w-1', 'w-1', 'revoked')).toMatchObject({
      ok: false,
      reason: expect.stringContaining('revoked'),
    });
    expect(connect('flota-worker-w-1', 'w-1')).toMatchObject({ ok: false, returnCode: 4 });
    expect(connect('x', 'not a valid id', 'good-x')).toMatchObject({ ok: false, returnCode: 4 });
  });

  it('lets anyone in as an observer, but never on a worker or master client id', () => {
    expect(connect('curious')).toEqual({ ok: true, identity: observer });
    expect(connect('curious', '_observer', 'anything')).toEqual({ ok: true, identity: observer });
    expect(connect('flota-worker-w-1')).toMatchObject({ ok: false, returnCode: 5 });
    expect(connect('flota-master-abc', '_observer')).toMatchObject({ ok: false, returnCode: 5 });
  });

  it('never puts the password in its reason', () => {
    for (const decision of [
      connect('flota-worker-w-1', 'w-1', 'good-w-9'),
      connect('c', '_master', 'master-secreX'),
    ]) {
      expect(decision.ok).toBe(false);
      if (!decision.ok) expect(decision.reason).not.toMatch(/good-w-9|secreX/);
    }
  });

  it('refuses an absurdly long client id', () => {
    expect(connect('c'.repeat(300))).toMatchObject({ ok: false, returnCode: 5 });
  });
});

describe('publishRefusal', () => {
  it('lets a worker publish only as itself, and retain only its status', () => {
    expect(publishRefusal(worker, topics.status('w-1'), true, topics)).toBeUndefined();
    expect(publishRefusal(worker, topics.heartbeat('w-1'), false, topics)).toBeUndefined();
    expect(publishRefusal(worker, topics.log('w-1'), false, topics)).toBeUndefined();
    expect(publishRefusal(worker, topics.log('w-1'), true, topics)).toMatch(/retain/);
    expect(publishRefusal(worker, topics.heartbeat('w-1'), true, topics)).toMatch(/retain/);
    expect(publishRefusal(worker, topics.status('w-2'), false, topics)).toBeDefined();
    expect(publishRefusal(worker, topics.log('master'), false, topics)).toBeDefined();
    expect(publishRefusal(worker, topics.tasks('w-1'), false, topics)).toBeDefined();
    expect(publishRefusal(worker, topics.control('w-1'), false, topics)).toBeDefined();
  });

  it('lets an observer publish nothing and the master anything but $ topics', () => {
    expect(publishRefusal(observer, topics.log('x'), false, topics)).toBeDefined();
    expect(publishRefusal(master, topics.tasks('w-1'), false, topics)).toBeUndefined();
    expect(publishRefusal(master, '$SYS/x', false, topics)).toBeDefined();
  });
});

describe('maySubscribe / mayReceive', () => {
  it('gives a worker its own tasks and control topics, nothing else', () => {
    expect(maySubscribe(worker, topics.tasks('w-1'), topics)).toBe(true);
    expect(maySubscribe(worker, topics.control('w-1'), topics)).toBe(true);
    for (const filter of [
      topics.tasks('w-2'),
      '#',
      'flota/v1/#',
      '+/+/+/tasks',
      topics.allStatus(),
    ]) {
      expect(maySubscribe(worker, filter, topics)).toBe(false);
    }
    expect(mayReceive(worker, topics.tasks('w-1'), topics)).toBe(true);
    expect(mayReceive(worker, topics.tasks('w-2'), topics)).toBe(false);
  });

  it('gives an observer log topics only', () => {
    for (const filter of ['flota/v1/logs/#', 'flota/v1/logs/+', 'flota/v1/logs/w-1']) {
      expect(maySubscribe(observer, filter, topics)).toBe(true);
    }
    for (const filter of [
      '#',
      'flota/#',
      'flota/v1/#',
      '+/+/+/tasks',
      'flota/v1/logs/+/x',
      'flota/v1/logs/#/x',
      topics.tasks('w-1'),
      topics.control('w-1'),
      topics.allStatus(),
      '$SYS/#',
    ]) {
      expect(maySubscribe(observer, filter, topics)).toBe(false);
    }
    expect(mayReceive(observer, topics.log('w-1'), topics)).toBe(true);
    expect(mayReceive(observer, topics.tasks('w-1'), topics)).toBe(false);
    expect(mayReceive(observer, topics.status('w-1'), topics)).toBe(false);
  });

  it('gives the master everything', () => {
    expect(maySubscribe(master, '#', topics)).toBe(true);
    expect(mayReceive(master, topics.status('w-1'), topics)).toBe(true);
  });
});

describe('RetainedTopics', () => {
  it('keeps at most max topics; updates and clears always pass', () => {
    const retained = new RetainedTopics(2);
    expect(retained.admit('a', 5)).toBe(true);
    expect(retained.admit('b', 5)).toBe(true);
    expect(retained.admit('c', 5)).toBe(false);
    expect(retained.admit('a', 7)).toBe(true);
    expect(retained.admit('a', 0)).toBe(true);
    expect(retained.size).toBe(1);
    expect(retained.admit('c', 5)).toBe(true);
  });
});
