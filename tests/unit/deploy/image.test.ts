/**
 * The Dockerfile without a Docker engine: what its build stage copies and
 * compiles is what the runtime imports, the build context lets exactly that
 * in, the runtime stage ships the compiled dist/ with production dependencies
 * only, and those cover every package the code imports (dev ones, the
 * transpilers among them, are omitted in the image), and the master's
 * HEALTHCHECK command really tells ready from unready, over HTTP and, with
 * TLS_CERT set, over HTTPS.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { builtinModules } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runOk } from './support/tools.ts';

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const buildConfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as {
  include: string[];
};

/** Sources the build stage copies from the build context (not from another stage). */
const copied = [...dockerfile.matchAll(/^COPY (?!--from)(?:--\S+ )*(.+) \S+$/gm)].flatMap((m) =>
  (m[1] ?? '').split(' '),
);

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|mjs|js)$/.test(e.name) && !e.name.endsWith('.test.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

const isDir = (path: string) =>
  existsSync(join(ROOT, path)) && statSync(join(ROOT, path)).isDirectory();
/** Code directories (web/ holds static files the master serves, not code it imports). */
const runtimeDirs = copied.filter((p) => isDir(p) && p !== 'web');
const runtimeFiles = runtimeDirs.flatMap(sourceFiles);

function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found = [
    ...text.matchAll(/^\s*(?:import|export)\s(?!type\s)[^'"]*?from\s+'([^']+)'/gm),
    ...text.matchAll(/^\s*import\s+'([^']+)'/gm),
    ...text.matchAll(/\bimport\('([^']+)'\)/g),
  ];
  return found.map((m) => m[1] ?? '');
}

describe('images', () => {
  it('build two targets, master with a /readyz health check, both as the node user', () => {
    expect(dockerfile).toMatch(/^FROM runtime AS master$/m);
    expect(dockerfile).toMatch(/^FROM runtime AS worker$/m);
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev /m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/flota-entrypoint"\]$/m);
    const [, master = '', worker = ''] = dockerfile.split(/^FROM runtime AS \w+$/m);
    expect(master).toMatch(/^HEALTHCHECK .*\n.*\/readyz/m);
    expect(worker).not.toMatch(/HEALTHCHECK/);
  });

  it('compile in a build stage and ship only dist/ and production node_modules', () => {
    const [, build = '', runtime = ''] = dockerfile.split(/^FROM .* AS (?:build|runtime)$/m);
    expect(build).toMatch(/^RUN npm run build$/m);
    expect(runtime).toMatch(/^COPY --from=deps \/app\/node_modules \.\/node_modules$/m);
    expect(runtime).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(runtime.match(/^COPY (?!--from).*$/gm)).toEqual([
      'COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/flota-entrypoint',
    ]);
    const entrypoint = readFileSync(join(ROOT, 'deploy/docker/entrypoint.sh'), 'utf8');
    expect(entrypoint).toMatch(/^exec node \/app\/dist\/cli\/flota\.js "\$@"$/m);
    expect(pkg.scripts.build).toContain('tsc -b tsconfig.build.json');
    // The build compiles exactly the code directories the build stage copies.
    expect([...buildConfig.include].sort()).toEqual(runtimeDirs.sort());
  });

  it('copy every directory the runtime code imports from, and the build context has them', () => {
    expect(runtimeDirs.sort()).toEqual([
      'autoscaler',
      'cli',
      'common',
      'master',
      'proto',
      'worker',
    ]);
    for (const file of runtimeFiles) {
      for (const spec of importsOf(file).filter((s) => s.startsWith('.'))) {
        const target = relative(ROOT, resolve(dirname(join(ROOT, file)), spec));
        expect(existsSync(join(ROOT, target)), `${file} imports ${spec}`).toBe(true);
        expect(copied, `${file} imports ${target}, which the image lacks`).toContain(
          target.split('/')[0],
        );
      }
    }
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignore).toContain('*');
    for (const source of copied) {
      const line = `!${source}${isDir(source) ? '/' : ''}`;
      expect(ignore, `.dockerignore keeps ${source} out`).toContain(line);
    }
  });

  it('need only production dependencies at run time, and no transpiler', () => {
    for (const transpiler of ['tsx', 'typescript', 'esbuild']) {
      expect(pkg.dependencies[transpiler], transpiler).toBeUndefined();
    }
    const builtins = new Set(builtinModules);
    const packages = new Set<string>();
    for (const file of runtimeFiles) {
      for (const spec of importsOf(file).filter((s) => !s.startsWith('.'))) {
        if (spec.startsWith('node:') || builtins.has(spec)) continue;
        const parts = spec.split('/');
        packages.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? spec));
      }
    }
    expect([...packages]).toEqual(expect.arrayContaining(['bullmq', 'mqtt', 'zod']));
    expect([...packages]).not.toContain('tsx');
    for (const name of packages) {
      expect(pkg.dependencies[name], `${name} is imported at run time`).toBeDefined();
    }
  });

  it('has a HEALTHCHECK command that passes on 200 and fails on 503 or no answer', async () => {
    const line = /^\s*CMD (\[.*\])$/m.exec(dockerfile.slice(dockerfile.indexOf('HEALTHCHECK')));
    const command = JSON.parse(line?.[1] ?? '[]') as string[];
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    // A certificate from deploy/make-secrets.sh, as the stack's master serves.
    const secrets = join(mkdtempSync(join(tmpdir(), 'flota-image-')), 'secrets');
    runOk(join(ROOT, 'deploy/make-secrets.sh'), [], { env: { SECRETS_DIR: secrets } });
    const tls = {
      cert: readFileSync(join(secrets, 'tls_cert')),
      key: readFileSync(join(secrets, 'tls_key')),
    };
    let status = 200;
    const handler = (
      req: { url?: string },
      res: { statusCode: number; end(body: string): void },
    ) => {
      res.statusCode = req.url === '/readyz' ? status : 404;
      res.end('{}');
    };
    const check = (env: Record<string, string>) =>
      new Promise<number | null>((done) => {
        const child = spawn(process.execPath, command.slice(1), { env, stdio: 'ignore' });
        child.on('exit', (code) => done(code));
      });
    try {
      for (const [scheme, server, env] of [
        ['http', createHttpServer(handler), {}],
        ['https', createHttpsServer(tls, handler), { TLS_CERT: '/run/secrets/tls_cert' }],
      ] as Array<[string, Server, Record<string, string>]>) {
        status = 200;
        await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
        const port = String((server.address() as AddressInfo).port);
        try {
          expect(await check({ ...env, PORT: port }), scheme).toBe(0);
          status = 503;
          expect(await check({ ...env, PORT: port }), scheme).toBe(1);
        } finally {
          await new Promise((done) => server.close(done));
        }
        expect(await check({ ...env, PORT: port }), scheme).toBe(1);
      }
    } finally {
      rmSync(join(secrets, '..'), { recursive: true, force: true });
    }
  });
});
