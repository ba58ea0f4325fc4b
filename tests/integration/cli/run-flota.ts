/** Runs the `flota` CLI as a user would and collects what it printed. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const FLOTA_BIN = fileURLToPath(new URL('../../../bin/flota.mjs', import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node bin/flota.mjs <args>` with exactly `env`; resolves once it exited and its output closed. */
export function runFlota(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FLOTA_BIN, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Runs the CLI against `url` with only the environment given: the caller's
 * FLOTA_URL and FLOTA_TOKEN never leak in from the shell.
 */
export function runFlotaAt(url: string, args: string[], env: Record<string, string> = {}) {
  const { FLOTA_URL: _url, FLOTA_TOKEN: _token, ...base } = process.env;
  return runFlota(args, { ...base, FLOTA_URL: url, ...env });
}

/** The JSON a run printed; throws with its stderr when it failed. */
export const asJson = <T>(run: Run): T => {
  if (run.code !== 0) throw new Error(`flota exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
};
