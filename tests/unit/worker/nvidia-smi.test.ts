import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { createGpuSampler, parseNvidiaSmi } from '../../../worker/src/metrics/gpu.ts';
import { cpuPercent } from '../../../worker/src/metrics/system.ts';

describe('parseNvidiaSmi', () => {
  it('parses one line per GPU', () => {
    const out =
      '0, NVIDIA A100-SXM4-40GB, 37, 1024, 40960\n1, NVIDIA GeForce RTX 4090, 0, 3, 24564\n';
    expect(parseNvidiaSmi(out)).toEqual([
      { index: 0, name: 'NVIDIA A100-SXM4-40GB', utilPct: 37, memUsedMb: 1024, memTotalMb: 40960 },
      { index: 1, name: 'NVIDIA GeForce RTX 4090', utilPct: 0, memUsedMb: 3, memTotalMb: 24564 },
    ]);
  });

  it('keeps commas in names, reads [N/A] utilisation as 0, skips junk', () => {
    const out = '0, Tesla T4, rev 2, [N/A], 10, 15360\r\ngarbage line\n\n2, X, 1, 2\n';
    expect(parseNvidiaSmi(out)).toEqual([
      { index: 0, name: 'Tesla T4, rev 2', utilPct: 0, memUsedMb: 10, memTotalMb: 15360 },
    ]);
  });

  it('returns [] for empty output', () => {
    expect(parseNvidiaSmi('')).toEqual([]);
  });
});

describe('gpu sampler', () => {
  it('never blocks: answers from cache and refreshes in the background', async () => {
    let calls = 0;
    let release: (out: string) => void = () => {};
    const sampler = createGpuSampler({
      log: pino({ level: 'silent' }),
      refreshMs: 0,
      firstProbeAfterMs: 0,
      run: () => {
        calls += 1;
        return new Promise((resolve) => {
          release = resolve;
        });
      },
    });
    expect(sampler.current()).toEqual([]);
    expect(sampler.current()).toEqual([]);
    expect(calls).toBe(1);
    release('0, G, 5, 1, 2\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(sampler.current()).toHaveLength(1);
  });

  it('stops trying when nvidia-smi is absent', async () => {
    let calls = 0;
    const sampler = createGpuSampler({
      log: pino({ level: 'silent' }),
      refreshMs: 0,
      firstProbeAfterMs: 0,
      run: () => {
        calls += 1;
        return Promise.reject(
          Object.assign(new Error('spawn nvidia-smi ENOENT'), { code: 'ENOENT' }),
        );
      },
    });
    sampler.current();
    await new Promise((resolve) => setImmediate(resolve));
    sampler.current();
    expect(calls).toBe(1);
  });
});

describe('cpuPercent', () => {
  it('is the busy share between two samples', () => {
    expect(cpuPercent({ idle: 100, total: 200 }, { idle: 150, total: 400 })).toBe(75);
    expect(cpuPercent({ idle: 1, total: 1 }, { idle: 1, total: 1 })).toBe(0);
  });
});

describe('gpu sampler at start', () => {
  it('waits firstProbeAfterMs before its first probe, so registering is not slowed', () => {
    vi.useFakeTimers();
    try {
      let calls = 0;
      const sampler = createGpuSampler({
        log: pino({ level: 'silent' }),
        firstProbeAfterMs: 1_000,
        run: () => {
          calls += 1;
          return new Promise(() => {});
        },
      });
      expect(sampler.current()).toEqual([]);
      vi.advanceTimersByTime(999);
      sampler.current();
      expect(calls).toBe(0);
      vi.advanceTimersByTime(1);
      sampler.current();
      expect(calls).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });
});
