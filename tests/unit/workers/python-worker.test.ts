/**
 * The Python worker's own unit tests (workers/python/tests: configuration,
 * message validation, log redaction, the echo and OpenAI-compatible
 * providers, the MQTT link's hand-over from paho's thread, the report
 * stream and enrolment against an in-process gRPC server), run with
 * Debian's python3 so `npm test` covers them.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PYTHON_WORKER = fileURLToPath(new URL('../../../workers/python', import.meta.url));

describe('workers/python', () => {
  it('passes python3 -m unittest', () => {
    const run = spawnSync('/usr/bin/python3', ['-m', 'unittest', '-q'], {
      cwd: PYTHON_WORKER,
      encoding: 'utf8',
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    expect(run.error).toBeUndefined();
    expect(run.stderr).toMatch(/\nOK\s*$/);
    expect(run.status).toBe(0);
  });

  it('exits non-zero on a bad setting, naming the variable', () => {
    const run = spawnSync('/usr/bin/python3', ['worker.py'], {
      cwd: PYTHON_WORKER,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, WORKER_TOKEN: 'fwt1.x', SLOTS: '0' },
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/invalid worker configuration:\n {2}- SLOTS: /);
  });
});
