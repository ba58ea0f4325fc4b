/**
 * scale.sh and stop.sh against a stand-in `docker` (support/fake-docker.ts):
 * GPU workers only as many as gpu=true nodes advertise GPUs, and no wait for
 * the swarm longer than DEPLOY_TIMEOUT, with where to look when it expires.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFakeSwarm, type FakeSwarm } from './support/fake-docker.ts';

let swarm: FakeSwarm;

beforeEach(() => {
  swarm = createFakeSwarm();
  swarm.addNode('node-1', ['flota.data=true']);
  for (const service of ['worker-cpu', 'worker-gpu', 'worker-python', 'autoscaler']) {
    swarm.setService(`flota_${service}`, service === 'worker-cpu' ? 2 : 0);
  }
});

afterEach(() => swarm.remove());

const scale = (args: string[], env: Record<string, string> = {}) =>
  swarm.run('scale.sh', args, env);

describe('scale.sh', () => {
  it('scales worker-gpu only onto GPUs that gpu=true nodes advertise', () => {
    const unlabelled = scale(['worker-gpu', '1']);
    expect(unlabelled.status).not.toBe(0);
    expect(unlabelled.stderr).toMatch(
      /1 worker-gpu task\(s\) asked for, but no node is labelled gpu=true: label each GPU node \(docker node update --label-add gpu=true <node>/,
    );

    swarm.addNode('gpu-1', ['gpu=true'], [{ DiscreteResourceSpec: { Kind: 'FPGA', Value: 4 } }]);
    expect(scale(['worker-gpu', '1']).stderr).toMatch(
      /advertise no GPU to Swarm: add "node-generic-resources": \["GPU=<uuid>"\]/,
    );

    // Named (one per UUID) and discrete resources both count.
    swarm.addNode('gpu-1', ['gpu=true'], [{ NamedResourceSpec: { Kind: 'GPU', Value: 'GPU-a' } }]);
    swarm.addNode('gpu-2', ['gpu=true'], [{ DiscreteResourceSpec: { Kind: 'GPU', Value: 2 } }]);
    swarm.addNode('cpu-1', [], [{ DiscreteResourceSpec: { Kind: 'GPU', Value: 8 } }]);
    expect(scale(['worker-gpu', '4']).stderr).toMatch(/advertise 3 GPU\(s\), one per task/);
    expect(swarm.calls()).toEqual([]);

    const three = scale(['worker-gpu', '3']);
    expect(three.stderr).toBe('');
    expect(three.status).toBe(0);
    expect(swarm.calls()).toEqual(['service scale --detach=false flota_worker-gpu=3']);
  });

  it('needs no GPU to scale worker-gpu to 0, nor for worker-cpu or worker-python', () => {
    expect(scale(['worker-gpu', '0']).status).toBe(0);
    expect(scale(['worker-cpu', '4']).status).toBe(0);
    expect(scale(['worker-python', '3']).status).toBe(0);
    expect(swarm.calls()).toEqual([
      'service scale --detach=false flota_worker-gpu=0',
      'service scale --detach=false flota_worker-cpu=4',
      'service scale --detach=false flota_worker-python=3',
    ]);
  });

  it('warns that a running autoscaler resizes worker-cpu, but not worker-python', () => {
    swarm.setService('flota_autoscaler', 1);
    expect(scale(['worker-cpu', '4']).stderr).toMatch(
      /the autoscaler runs and will resize worker-cpu itself/,
    );
    const python = scale(['worker-python', '1']);
    expect(python.status).toBe(0);
    expect(python.stderr).toBe('');
  });

  it('stops waiting after DEPLOY_TIMEOUT and says where to look', () => {
    const hung = scale(['worker-cpu', '4'], { DEPLOY_TIMEOUT: '1', FAKE_HANG: '1' });
    expect(hung.status).not.toBe(0);
    expect(hung.stderr).toMatch(
      /gave up after 1s \(DEPLOY_TIMEOUT\) waiting for flota_worker-cpu to run 4 task\(s\); Swarm keeps at it\. See why: docker service ps --no-trunc flota_worker-cpu \(why: e\.g\. no node meets the placement constraints/,
    );
    expect(scale(['worker-cpu', '4'], { DEPLOY_TIMEOUT: '-1' }).stderr).toMatch(
      /DEPLOY_TIMEOUT must be a whole number of seconds \(0: no limit\)/,
    );
  });
});

describe('stop.sh', () => {
  it('stops the autoscaler, then the workers, then removes the stack', () => {
    swarm.setStack('flota');
    for (const service of ['worker-gpu', 'worker-python', 'autoscaler']) {
      swarm.setService(`flota_${service}`, 1);
    }
    const stopped = swarm.run('stop.sh', []);
    expect(stopped.status).toBe(0);
    expect(swarm.calls()).toEqual([
      'service scale --detach=false flota_autoscaler=0',
      'service scale --detach=false flota_worker-cpu=0 flota_worker-gpu=0 flota_worker-python=0',
      'stack rm --detach=false flota',
    ]);
    expect(stopped.stderr).toMatch(/stack flota removed/);
  });

  it('leaves services already at 0 alone (scaling them waits for nothing)', () => {
    swarm.setStack('flota');
    const stopped = swarm.run('stop.sh', []);
    expect(stopped.status).toBe(0);
    expect(swarm.calls()).toEqual([
      'service scale --detach=false flota_worker-cpu=0',
      'stack rm --detach=false flota',
    ]);
  });

  it('stops waiting after DEPLOY_TIMEOUT and says where to look', () => {
    swarm.setStack('flota');
    swarm.setService('flota_autoscaler', 1);
    const hung = swarm.run('stop.sh', [], { DEPLOY_TIMEOUT: '1', FAKE_HANG: '1' });
    expect(hung.status).not.toBe(0);
    expect(hung.stderr).toMatch(
      /gave up after 1s \(DEPLOY_TIMEOUT\) waiting for the autoscaler to stop; Swarm keeps at it\. See why: docker service ps --no-trunc flota_autoscaler/,
    );
  });
});
