import { describe, expect, it } from 'vitest';
import {
  createWorkerCommands,
  ensureRoleCommands,
  masterAcls,
  observerAcls,
  updateWorkerCommands,
  workerAcls,
} from '../../../master/src/broker/dynsec.ts';
import { createTopics } from '../../../proto/src/topics.ts';

const topics = createTopics('acme/flota');

describe('dynsec commands', () => {
  it('gives a worker role its own topics only', () => {
    expect(workerAcls(topics, 'w-1')).toEqual([
      { acltype: 'publishClientSend', topic: 'acme/flota/workers/w-1/status', allow: true },
      { acltype: 'publishClientSend', topic: 'acme/flota/workers/w-1/heartbeat', allow: true },
      { acltype: 'publishClientSend', topic: 'acme/flota/logs/w-1', allow: true },
      { acltype: 'subscribePattern', topic: 'acme/flota/workers/w-1/tasks', allow: true },
      { acltype: 'subscribePattern', topic: 'acme/flota/workers/w-1/control', allow: true },
    ]);
  });

  it('scopes the master to the prefix and observers to logs', () => {
    expect(masterAcls(topics).map((a) => a.topic)).toEqual([
      'acme/flota/#',
      'acme/flota/#',
      'acme/flota/#',
    ]);
    expect(observerAcls(topics)).toEqual([
      { acltype: 'subscribePattern', topic: 'acme/flota/logs/#', allow: true },
    ]);
  });

  it('creates a role, leaving an existing one untouched', () => {
    const acls = observerAcls(topics);
    expect(ensureRoleCommands('r', acls)).toEqual([{ command: 'createRole', rolename: 'r', acls }]);
  });

  it('creates a worker login bound to its client id and role', () => {
    expect(createWorkerCommands(topics, 'w-1', 'fwt1.w-1.x.y')).toEqual([
      { command: 'createRole', rolename: 'flota-worker-w-1', acls: workerAcls(topics, 'w-1') },
      {
        command: 'createClient',
        username: 'w-1',
        password: 'fwt1.w-1.x.y',
        clientid: 'flota-worker-w-1',
        roles: [{ rolename: 'flota-worker-w-1' }],
      },
    ]);
  });

  it('updates an existing login, adding its role only when missing', () => {
    const names = (hasRole: boolean) =>
      updateWorkerCommands('w-1', 'fwt1.w-1.x.y', hasRole).map((c) => c.command);
    expect(names(true)).toEqual(['setClientPassword', 'setClientId', 'enableClient']);
    expect(names(false)).toEqual([
      'setClientPassword',
      'setClientId',
      'addClientRole',
      'enableClient',
    ]);
  });
});
