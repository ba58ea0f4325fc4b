/**
 * build.sh's image tag in a scratch git repository laid out like this one:
 * "-dirty" only when what the images are built from differs from the commit
 * (the Dockerfile, .dockerignore and what .dockerignore lets in), never for
 * stack.yml, docs or tests, which deploy.sh would otherwise look for under a
 * tag that was never built.
 */
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, run, runOk } from './support/tools.ts';

let repo = '';
let sha = '';

const write = (file: string, text: string) => {
  mkdirSync(dirname(join(repo, file)), { recursive: true });
  writeFileSync(join(repo, file), text);
};
const git = (...args: string[]) =>
  runOk('git', ['-c', 'user.name=flota', '-c', 'user.email=flota@localhost', ...args], {
    cwd: repo,
  });
const tag = () => runOk(join(repo, 'build.sh'), ['--print-tag'], { cwd: repo }).trim();

/** Runs `change`, reads the tag, then puts the checkout back as committed. */
function tagWith(change: () => void): string {
  change();
  try {
    return tag();
  } finally {
    git('checkout', '-q', '--', '.');
    git('clean', '-q', '-fd');
  }
}

beforeAll(() => {
  repo = mkdtempSync(join(tmpdir(), 'flota-build-tag-'));
  for (const file of ['build.sh', 'deploy/lib.sh', 'Dockerfile', '.dockerignore']) {
    cpSync(join(ROOT, file), join(repo, file));
  }
  write('package.json', '{\n  "name": "flota",\n  "version": "9.8.7",\n  "private": true\n}\n');
  write('package-lock.json', '{}\n');
  write('master/src/main.ts', 'export {};\n');
  write('master/src/main.test.ts', 'export {};\n');
  write('deploy/docker/entrypoint.sh', '#!/bin/sh\n');
  write('stack.yml', 'services: {}\n');
  write('docs/DEPLOY.md', '# Deploying\n');
  git('init', '-q');
  git('add', '-A');
  git('commit', '-q', '--no-gpg-sign', '-m', 'scratch');
  sha = git('rev-parse', '--short=12', 'HEAD').trim();
});

afterAll(() => {
  if (repo) rmSync(repo, { recursive: true, force: true });
});

describe('build.sh --print-tag', () => {
  it('is <version>-<sha> for a clean checkout', () => {
    expect(tag()).toBe(`9.8.7-${sha}`);
  });

  it('ignores changes outside the image: stack.yml, docs, tests, deploy scripts', () => {
    expect(tagWith(() => write('stack.yml', 'services: { x: {} }\n'))).toBe(`9.8.7-${sha}`);
    expect(tagWith(() => write('docs/DEPLOY.md', '# Changed\n'))).toBe(`9.8.7-${sha}`);
    expect(tagWith(() => write('master/src/main.test.ts', 'export const x = 1;\n'))).toBe(
      `9.8.7-${sha}`,
    );
    expect(tagWith(() => appendFileSync(join(repo, 'deploy/lib.sh'), '# changed\n'))).toBe(
      `9.8.7-${sha}`,
    );
    expect(tagWith(() => write('deploy/mosquitto/mosquitto.conf', 'listener 1883\n'))).toBe(
      `9.8.7-${sha}`,
    );
    expect(tagWith(() => write('tests/new.test.ts', 'export {};\n'))).toBe(`9.8.7-${sha}`);
  });

  it('is -dirty when an input of the image changed or is new', () => {
    const dirty = `9.8.7-${sha}-dirty`;
    expect(tagWith(() => write('master/src/main.ts', 'export const x = 1;\n'))).toBe(dirty);
    expect(tagWith(() => write('master/src/extra.ts', 'export {};\n'))).toBe(dirty);
    expect(tagWith(() => write('deploy/docker/entrypoint.sh', '#!/bin/sh\nset -eu\n'))).toBe(dirty);
    expect(tagWith(() => write('Dockerfile', 'FROM scratch\n'))).toBe(dirty);
    expect(tagWith(() => write('.dockerignore', '*\n'))).toBe(dirty);
    expect(tagWith(() => write('package-lock.json', '{ "x": 1 }\n'))).toBe(dirty);
  });

  it('needs a git checkout or TAG', () => {
    const outside = mkdtempSync(join(tmpdir(), 'flota-build-nogit-'));
    try {
      for (const file of ['build.sh', 'deploy/lib.sh', '.dockerignore', 'package.json']) {
        mkdirSync(dirname(join(outside, file)), { recursive: true });
        cpSync(join(repo, file), join(outside, file));
      }
      const env = { GIT_CEILING_DIRECTORIES: dirname(outside) };
      const result = run(join(outside, 'build.sh'), ['--print-tag'], { cwd: outside, env });
      expect(result.stderr).toMatch(/not a git checkout: set TAG/);
      const named = run(join(outside, 'build.sh'), ['--print-tag'], {
        cwd: outside,
        env: { ...env, TAG: 'v1' },
      });
      expect(named.stdout.trim()).toBe('v1');
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
