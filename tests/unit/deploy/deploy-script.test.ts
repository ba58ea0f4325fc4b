/**
 * deploy.sh's decisions, against a stand-in `docker` (support/fake-docker.ts):
 * --autoscale turns the autoscaler on and keeps the worker counts it chose,
 * an api_tokens secret from before the autoscaler is refused with what to do,
 * join tokens signed with another installation secret are refused, --no-tls
 * adds its override,
 * a tag the registry lacks is refused before anything changes, GPU workers
 * need GPUs to run on, -c files work from any directory, and the wait for the
 * swarm ends after DEPLOY_TIMEOUT.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFakeSwarm, type FakeSwarm } from './support/fake-docker.ts';
import { ROOT } from './support/tools.ts';

let swarm: FakeSwarm;

beforeEach(() => {
  swarm = createFakeSwarm();
  swarm.addNode('node-1', ['flota.data=true']);
  for (const role of ['master', 'worker', 'worker-gpu', 'worker-python']) {
    swarm.push(`reg.example:5000/flota-${role}:1.0.0`);
  }
});

afterEach(() => swarm.remove());

function deploy(args: string[], env: Record<string, string> = {}, cwd?: string) {
  const result = swarm.run(
    'deploy.sh',
    args,
    { REGISTRY: 'reg.example:5000', TAG: '1.0.0', ...env },
    cwd,
  );
  return { ...result, deployed: swarm.deployed() };
}

const GPU = (uuid: string) => ({ NamedResourceSpec: { Kind: 'GPU', Value: uuid } });

describe('deploy.sh', () => {
  it('deploys the autoscaler only with --autoscale', () => {
    const off = deploy([]);
    expect(off.stderr).not.toMatch(/with the autoscaler/);
    expect(off.deployed).toEqual({ AUTOSCALER_REPLICAS: '0', STACK: 'flota' });

    const on = deploy(['--autoscale']);
    expect(on.status).toBe(0);
    expect(on.deployed).toEqual({ AUTOSCALER_REPLICAS: '1', STACK: 'flota' });
    expect(on.stderr).toMatch(/with the autoscaler \(pools worker-cpu:cpu:2-8\)/);
  });

  it("creates the autoscaler's token and marks the token list that holds it", () => {
    expect(deploy(['--autoscale']).status).toBe(0);
    expect(swarm.secretLabels('flota_autoscaler_api_token')).toBe('flota.stack=flota\n');
    expect(swarm.secretLabels('flota_api_tokens')).toBe(
      'flota.stack=flota\nflota.autoscaler-token=listed\n',
    );
  });

  it('keeps the worker counts the autoscaler chose, unless they are set', () => {
    swarm.addNode('gpu-1', ['gpu=true'], [GPU('GPU-a')]);
    swarm.setService('flota_worker-cpu', 6);
    swarm.setService('flota_worker-gpu', 1);
    expect(deploy(['--autoscale']).deployed).toMatchObject({ CPU_WORKERS: '6', GPU_WORKERS: '1' });
    expect(deploy(['--autoscale'], { CPU_WORKERS: '3' }).deployed).toMatchObject({
      CPU_WORKERS: '3',
      GPU_WORKERS: '1',
    });
    expect(deploy([]).deployed?.CPU_WORKERS).toBeUndefined();
  });

  it('refuses --autoscale while the api_tokens secret predates the autoscaler', () => {
    // A stack deployed before the autoscaler existed: every secret but its token, unlabelled.
    for (const name of ['api_tokens', 'queue_url', 'flota_secret']) {
      swarm.setSecret(`flota_${name}`, ['flota.stack=flota']);
    }
    const refused = deploy(['--autoscale']);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(
      /secret flota_api_tokens predates the autoscaler and lacks its token: replace it \(docs\/DEPLOY.md, Autoscaling\)/,
    );
    expect(refused.deployed).toBeUndefined();
    expect(deploy([]).status).toBe(0);
    // With API tokens off the master asks the autoscaler for none.
    expect(deploy(['--autoscale'], { API_TOKENS_FILE: '' }).status).toBe(0);
  });

  it('records which flota_secret signed the join tokens, and refuses tokens of another', () => {
    expect(deploy([]).status).toBe(0);
    const fingerprint = /^flota\.fingerprint=([0-9a-f]{16})$/m.exec(
      swarm.secretLabels('flota_flota_secret'),
    )?.[1];
    expect(fingerprint).toBeDefined();
    for (const name of [
      'flota_worker_join_cpu',
      'flota_worker_join_gpu',
      'flota_worker_join_python',
    ]) {
      expect(swarm.secretLabels(name)).toMatch(`flota.signed-by=${fingerprint}`);
    }
    // The secret itself never appears in a label.
    const secret = readFileSync(join(swarm.dir, 'secrets', 'flota_secret'), 'utf8').trim();
    expect(swarm.secretLabels('flota_flota_secret')).not.toContain(secret.slice(0, 16));

    // A swarm secret was removed and deploy.sh runs on a machine whose
    // deploy/secrets hold another installation's flota_secret.
    writeFileSync(join(swarm.dir, 'secrets', 'flota_secret'), `${'e'.repeat(64)}\n`);
    // Python's first: deploy.sh checks cpu, gpu, python in turn and names the first it refuses.
    for (const name of ['flota_worker_join_python', 'flota_worker_join_gpu']) {
      rmSync(join(swarm.dir, 'swarm', 'secrets', name));
      const refused = deploy([]);
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toMatch(
        new RegExp(`secret ${name} was signed with another flota_secret than flota_flota_secret`),
      );
      expect(refused.stderr).not.toMatch(/deploying/);
    }
  });

  it('deploys without TLS only with --no-tls', () => {
    expect(deploy([]).status).toBe(0);
    expect(swarm.composeFiles()).toEqual([join(ROOT, 'stack.yml')]);
    const plain = deploy(['--no-tls']);
    expect(plain.status).toBe(0);
    expect(swarm.composeFiles().slice(1)).toEqual([
      join(ROOT, 'stack.yml'),
      join(ROOT, 'deploy/stack.no-tls.yml'),
    ]);
    expect(plain.stderr).toMatch(/verify\.sh checks it end to end \(with --url http:\/\//);
  });

  it('refuses a tag the registry lacks, naming build.sh, before it changes anything', () => {
    const refused = deploy([], { TAG: '1.0.0-abc-dirty' });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(
      /cannot find reg\.example:5000\/flota-master:1\.0\.0-abc-dirty in the registry \(docker manifest inspect: no such manifest: .*\): build and push it with REGISTRY=reg\.example:5000 \.\/build\.sh/,
    );
    expect(refused.stderr).toMatch(/--skip-image-check/);
    expect(refused.deployed).toBeUndefined();
    expect(() => swarm.secretLabels('flota_api_tokens')).toThrow();

    const skipped = deploy(['--skip-image-check'], { TAG: '1.0.0-abc-dirty' });
    expect(skipped.status).toBe(0);
    expect(skipped.deployed).toMatchObject({ STACK: 'flota' });
  });

  it('asks for both images, over plain HTTP only for a registry on this machine', () => {
    expect(deploy([]).status).toBe(0);
    expect(swarm.calls()).toEqual([
      'manifest inspect reg.example:5000/flota-master:1.0.0',
      'manifest inspect reg.example:5000/flota-worker:1.0.0',
    ]);
    for (const role of ['master', 'worker']) swarm.push(`localhost:5000/flota-${role}:1.0.0`);
    expect(deploy([], { REGISTRY: 'localhost:5000/' }).status).toBe(0);
    expect(swarm.calls().slice(2)).toEqual([
      'manifest inspect --insecure localhost:5000/flota-master:1.0.0',
      'manifest inspect --insecure localhost:5000/flota-worker:1.0.0',
    ]);
  });

  it('asks for the Python worker image only when Python workers are wanted', () => {
    const python = createFakeSwarm();
    try {
      python.addNode('node-1', ['flota.data=true']);
      for (const role of ['master', 'worker']) python.push(`reg.example:5000/flota-${role}:1.0.0`);
      const env = { REGISTRY: 'reg.example:5000', TAG: '1.0.0' };
      expect(python.run('deploy.sh', [], env).status).toBe(0);
      const refused = python.run('deploy.sh', [], { ...env, PYTHON_WORKERS: '1' });
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toMatch(/cannot find reg\.example:5000\/flota-worker-python:1\.0\.0/);
      python.push('reg.example:5000/flota-worker-python:1.0.0');
      expect(python.run('deploy.sh', [], { ...env, PYTHON_WORKERS: '1' }).status).toBe(0);
      expect(python.deployed()).toMatchObject({ PYTHON_WORKERS: '1' });
      expect(python.run('deploy.sh', [], { ...env, PYTHON_WORKERS: 'one' }).stderr).toMatch(
        /PYTHON_WORKERS must be a whole number, not 'one'/,
      );
    } finally {
      python.remove();
    }
  });

  it('asks for the GPU worker image too when GPU workers are wanted', () => {
    const gpu = createFakeSwarm();
    try {
      gpu.addNode('node-1', ['flota.data=true']);
      for (const role of ['master', 'worker']) gpu.push(`reg.example:5000/flota-${role}:1.0.0`);
      const refused = gpu.run('deploy.sh', [], {
        REGISTRY: 'reg.example:5000',
        TAG: '1.0.0',
        GPU_WORKERS: '1',
      });
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toMatch(/cannot find reg\.example:5000\/flota-worker-gpu:1\.0\.0/);
      expect(gpu.deployed()).toBeUndefined();
    } finally {
      gpu.remove();
    }
  });

  it('passes -c files with absolute paths, whatever directory it runs from', () => {
    const elsewhere = join(swarm.dir, 'ops');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'extra.yml'), 'services: {}\n');
    const result = deploy(
      ['-c', 'extra.yml', '-c', join(ROOT, 'deploy/stack.gemini.yml')],
      {},
      elsewhere,
    );
    expect(result.stderr).not.toMatch(/cannot read/);
    expect(result.status).toBe(0);
    expect(swarm.composeFiles()).toEqual([
      join(ROOT, 'stack.yml'),
      join(elsewhere, 'extra.yml'),
      join(ROOT, 'deploy/stack.gemini.yml'),
    ]);
  });

  it('refuses GPU workers that no gpu=true node has GPUs for', () => {
    const none = deploy([], { GPU_WORKERS: '1' });
    expect(none.status).not.toBe(0);
    expect(none.stderr).toMatch(/no node is labelled gpu=true: label each GPU node/);
    expect(none.deployed).toBeUndefined();

    swarm.addNode('gpu-1', ['gpu=true']);
    expect(deploy([], { GPU_WORKERS: '1' }).stderr).toMatch(/advertise no GPU to Swarm/);

    swarm.addNode('gpu-1', ['gpu=true'], [GPU('GPU-a'), GPU('GPU-b')]);
    expect(deploy([], { GPU_WORKERS: '3' }).stderr).toMatch(/advertise 2 GPU\(s\), one per task/);
    const two = deploy([], { GPU_WORKERS: '2' });
    expect(two.status).toBe(0);
    expect(two.deployed).toMatchObject({ GPU_WORKERS: '2' });
    expect(deploy([], { GPU_WORKERS: 'two' }).stderr).toMatch(/GPU_WORKERS must be a whole number/);
  });

  it('stops waiting for a stack that does not converge after DEPLOY_TIMEOUT', () => {
    const hung = deploy([], { DEPLOY_TIMEOUT: '1', FAKE_HANG: '1' });
    expect(hung.status).not.toBe(0);
    expect(hung.stderr).toMatch(
      /gave up after 1s \(DEPLOY_TIMEOUT\) waiting for stack flota to converge; Swarm keeps at it\. See why: docker stack services flota .*docker service ps --no-trunc flota_<service>/,
    );
    expect(deploy([], { DEPLOY_TIMEOUT: 'soon' }).stderr).toMatch(
      /DEPLOY_TIMEOUT must be a whole number of seconds/,
    );
  });
});
