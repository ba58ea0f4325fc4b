import { describe, expect, it } from 'vitest';
import {
  autoscaleFlagFromNpm,
  hostPoolName,
  loadAutoscalerConfig,
} from '../../../autoscaler/src/config.ts';
import { ConfigError } from '../../../common/errors.ts';

describe('loadAutoscalerConfig', () => {
  it('defaults to one local CPU pool named local', () => {
    const config = loadAutoscalerConfig({});
    expect(config.AUTOSCALE_DRIVER).toBe('local');
    expect(config.AUTOSCALE_MASTER_URL).toBe('http://127.0.0.1:8080');
    expect(config.pools).toEqual([
      {
        name: 'local',
        capability: 'cpu',
        workerPrefix: 'local-',
        policy: {
          min: 1,
          max: 4,
          stepUp: 2,
          stepDown: 1,
          cooldownUpMs: 10_000,
          cooldownDownMs: 60_000,
          upAfterDownMs: 0,
          targetUtilisation: 0.8,
          slotsPerWorker: 2,
        },
      },
    ]);
  });

  it('reads pools with their own bounds; Swarm pools are told apart by class', () => {
    const config = loadAutoscalerConfig({
      AUTOSCALE_DRIVER: 'swarm',
      AUTOSCALE_POOLS: 'worker-cpu:cpu:2-10, worker-gpu:gpu:0-2',
      AUTOSCALE_STEP_UP: '3',
    });
    expect(
      config.pools.map((p) => [
        p.name,
        p.capability,
        p.workerPrefix,
        p.policy.min,
        p.policy.max,
        p.policy.stepUp,
      ]),
    ).toEqual([
      ['worker-cpu', 'cpu', 'cpu-', 2, 10, 3],
      ['worker-gpu', 'gpu', 'gpu-', 0, 2, 3],
    ]);
  });

  it("names flota autoscale's local pool after the host, so two machines never share worker ids", () => {
    expect(hostPoolName('GPU-Box.lan')).toBe('gpu-box.lan');
    expect(hostPoolName('_weird host!')).toBe('weird-host-');
    expect(hostPoolName('---')).toBe('local');
    const config = loadAutoscalerConfig({}, {}, hostPoolName('Node-7'));
    expect(config.pools.map((p) => [p.name, p.workerPrefix])).toEqual([['node-7', 'node-7-']]);
    const swarm = loadAutoscalerConfig({ AUTOSCALE_DRIVER: 'swarm' }, {}, 'node-7');
    expect(swarm.pools.map((p) => p.name)).toEqual(['worker-cpu']);
  });

  it('lets the environment win over the defaults a caller passes', () => {
    const config = loadAutoscalerConfig(
      { AUTOSCALE_API_TOKEN: 'from-env' },
      { AUTOSCALE_API_TOKEN: 'fallback', AUTOSCALE_MAX: '9' },
    );
    expect(config.AUTOSCALE_API_TOKEN).toBe('from-env');
    expect(config.pools[0]?.policy.max).toBe(9);
  });

  it('lists every problem at once, naming the variable', () => {
    let error: unknown;
    try {
      loadAutoscalerConfig({
        AUTOSCALE_DRIVER: 'k8s',
        AUTOSCALE_TARGET_UTILISATION: '0',
        AUTOSCALE_MASTER_URL: 'ftp://x',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('AUTOSCALE_DRIVER');
    expect(message).toContain('AUTOSCALE_TARGET_UTILISATION');
    expect(message).toContain('AUTOSCALE_MASTER_URL');
  });

  it.each([
    ['cpu-pool', 'must be name:cpu|gpu[:min-max]'],
    ['a:tpu', 'must be name:cpu|gpu[:min-max]'],
    ['a:cpu:5', 'must be name:cpu|gpu[:min-max]'],
    ['a:cpu:5-2', 'min (5) is above max (2)'],
    ['a:cpu,a:cpu', 'pool a is named twice'],
  ])('refuses AUTOSCALE_POOLS=%s', (pools, problem) => {
    expect(() => loadAutoscalerConfig({ AUTOSCALE_POOLS: pools })).toThrow(problem);
  });

  it('refuses two Swarm pools of one class', () => {
    expect(() =>
      loadAutoscalerConfig({ AUTOSCALE_DRIVER: 'swarm', AUTOSCALE_POOLS: 'a:cpu,b:cpu' }),
    ).toThrow('cannot be told apart');
  });
});

describe('autoscaleFlagFromNpm', () => {
  it('sees `npm start --autoscale`, which npm passes on as npm_config_autoscale', () => {
    expect(autoscaleFlagFromNpm({ npm_config_autoscale: 'true' })).toBe(true);
    expect(autoscaleFlagFromNpm({})).toBe(false);
  });
});
