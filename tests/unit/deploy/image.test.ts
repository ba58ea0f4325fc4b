/**
 * The Dockerfile without a Docker engine: what its build stage copies and
 * compiles is what the runtime imports, the build context lets exactly that
 * in, the runtime stage ships the compiled dist/ with production dependencies
 * only, and those cover every package the code imports (dev ones, the
 * transpilers among them, are omitted in the image), and the master's
 * HEALTHCHECK command really tells ready from unready, over HTTP and, with
 * TLS_CERT set, over HTTPS. The Python worker's image installs the Debian
 * packages its README names and every module it imports comes from, and its
 * build step leaves gRPC code the worker loads without writing anything.
 */
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { builtinModules } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, run, runOk } from './support/tools.ts';

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

/** Each stage by name: its base, and its text from its FROM line to the next one. */
const stages = new Map(
  [...dockerfile.matchAll(/^FROM (\S+) AS (\S+)$/gm)].map((m, i, all) => [
    m[2] ?? '',
    { from: m[1] ?? '', text: dockerfile.slice(m.index, all[i + 1]?.index ?? dockerfile.length) },
  ]),
);
const PYTHON_STAGES = ['python-runtime', 'python-build', 'worker-python'];
const stageText = (names: string[]) => names.map((name) => stages.get(name)?.text ?? '').join('');
/** The Node images' stages: everything but the Python worker's. */
const nodeDockerfile = stageText([...stages.keys()].filter((n) => !PYTHON_STAGES.includes(n)));
/** Sources a stage copies from the build context (not from another stage). */
const contextCopies = (text: string) =>
  [...text.matchAll(/^COPY (?!--from)(?:--\S+ )*(.+) \S+$/gm)].flatMap((m) =>
    (m[1] ?? '').split(' '),
  );
const dockerignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const buildConfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as {
  include: string[];
};

/** Sources the Node stages copy from the build context. */
const copied = contextCopies(nodeDockerfile);

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
    const build = stageText(['build']);
    const runtime = stageText(['runtime', 'master', 'worker', 'worker-gpu']);
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
    expect(dockerignore).toContain('*');
    for (const source of copied) {
      const line = `!${source}${isDir(source) ? '/' : ''}`;
      expect(dockerignore, `.dockerignore keeps ${source} out`).toContain(line);
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

  it('build the Python worker on Debian with the packages its README names, as a user', () => {
    expect(stages.get('python-runtime')?.from).toBe(`debian:\${DEBIAN_VERSION}`);
    expect(dockerfile).toMatch(/^ARG DEBIAN_VERSION=bookworm-slim$/m);
    expect(stages.get('python-build')?.from).toBe('python-runtime');
    expect(stages.get('worker-python')?.from).toBe('python-runtime');
    // The packages between --no-install-recommends and the next &&.
    const installed = (stage: string) =>
      (/--no-install-recommends([^&]*)&&/.exec(stageText([stage]))?.[1] ?? '')
        .split(/[\s\\]+/)
        .filter(Boolean);
    const runtime = installed('python-runtime');
    const build = installed('python-build');
    const readme = readFileSync(join(ROOT, 'workers/python/README.md'), 'utf8');
    const named = /apt-get install -y --no-install-recommends \\\n\s+(.+)\n/.exec(readme)?.[1];
    expect(named).toBeDefined();
    for (const pkg of named?.split(/\s+/) ?? []) {
      expect([...runtime, ...build], `the image lacks ${pkg}`).toContain(pkg);
    }
    // The code generator serves the build only.
    expect(build).toContain('python3-grpc-tools');
    expect(runtime).not.toContain('python3-grpc-tools');
    const image = stageText(['worker-python']);
    expect(image).toMatch(/^COPY --from=python-build \/app \.\/$/m);
    expect(image).toMatch(/^USER flota$/m);
    expect(image).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/flota-entrypoint"\]$/m);
    expect(image).toMatch(/^CMD \["python-worker"\]$/m);
    expect(image).not.toMatch(/HEALTHCHECK/);
    const entrypoint = readFileSync(join(ROOT, 'deploy/docker/entrypoint.sh'), 'utf8');
    expect(entrypoint).toMatch(/^ {2}exec python3 -m flota_worker "\$@"$/m);
    // What the Python stages take from the build context is let in, bytecode is not.
    for (const source of contextCopies(stageText(PYTHON_STAGES))) {
      const allowed = dockerignore.some(
        (line) =>
          line.startsWith('!') && `${source}/`.startsWith(line.slice(1).replace(/\/?$/, '/')),
      );
      expect(allowed, `.dockerignore keeps ${source} out`).toBe(true);
    }
    expect(dockerignore).toContain('**/__pycache__');
  });

  it("import only the standard library and the Python worker's installed packages", () => {
    // Top-level modules flota_worker imports, read with ast (nothing is run).
    const script = [
      'import ast, json, pathlib, sys',
      'found = set()',
      "for path in pathlib.Path(sys.argv[1]).rglob('*.py'):",
      '    for node in ast.walk(ast.parse(path.read_text())):',
      '        if isinstance(node, ast.Import):',
      "            found.update(a.name.split('.')[0] for a in node.names)",
      '        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:',
      "            found.add(node.module.split('.')[0])",
      "print(json.dumps(sorted(m for m in found if m not in sys.stdlib_module_names and m != '__future__')))",
    ].join('\n');
    const modules = JSON.parse(
      runOk('/usr/bin/python3', ['-c', script, join(ROOT, 'workers/python/flota_worker')]),
    ) as string[];
    // grpc_tools is imported at build time only (python-build); google.protobuf by the generated code.
    const packages: Record<string, string> = {
      grpc: 'python3-grpcio',
      paho: 'python3-paho-mqtt',
      grpc_tools: 'python3-grpc-tools',
    };
    const installed = stageText(['python-runtime', 'python-build']);
    for (const module of modules) {
      expect(packages[module], `flota_worker imports ${module}`).toBeDefined();
      expect(installed, module).toContain(packages[module]);
    }
    expect(installed).toContain('python3-protobuf');
  });

  it("generate the Python worker's gRPC code at build time, so the worker writes nothing at start", () => {
    const app = mkdtempSync(join(tmpdir(), 'flota-python-image-'));
    try {
      // The build stage's layout and its generating step, as the Dockerfile has them.
      mkdirSync(join(app, 'proto/flota/v1'), { recursive: true });
      cpSync(join(ROOT, 'proto/flota/v1/master.proto'), join(app, 'proto/flota/v1/master.proto'));
      cpSync(join(ROOT, 'workers/python/flota_worker'), join(app, 'workers/python/flota_worker'), {
        recursive: true,
        filter: (source) => !source.includes('__pycache__'),
      });
      // The stage's last RUN, all of it (its lines joined).
      const step = /^RUN (python3 -c '[^']*proto\.load\(\)'(?:[^\n]*\\\n)*[^\n]*)$/m
        .exec(stageText(['python-build']))?.[1]
        ?.replaceAll('\\\n', ' ');
      expect(step).toMatch(/compileall/);
      // Debian's python3, as in the image (a python3 elsewhere on PATH lacks its packages).
      runOk('/bin/sh', ['-c', step ?? 'false'], { cwd: app, env: { PATH: '/usr/bin:/bin' } });
      // The image runs as another user than the one that built it: all of it is readable.
      for (const path of readdirSync(app, { recursive: true, encoding: 'utf8' })) {
        const stat = statSync(join(app, path));
        expect(
          stat.mode & (stat.isDirectory() ? 0o005 : 0o004),
          `${path} for other users`,
        ).not.toBe(0);
      }
      const tree = () =>
        readdirSync(app, { recursive: true, encoding: 'utf8' })
          .filter((path) => !path.includes('__pycache__'))
          .sort();
      const built = tree();
      expect(built.some((path) => path.endsWith('flota/v1/master_pb2_grpc.py'))).toBe(true);
      // The image's start: PYTHONPATH as the Dockerfile sets it, no code generator to fall back on.
      const started = run(
        '/usr/bin/python3',
        [
          '-c',
          'import sys; sys.modules["grpc_tools"] = None; from flota_worker import proto; pb, stub = proto.load(); print(stub.MasterStub.__name__)',
        ],
        {
          cwd: '/',
          env: { PYTHONPATH: join(app, 'workers/python'), PYTHONDONTWRITEBYTECODE: '1' },
        },
      );
      expect(started.stderr).toBe('');
      expect(started.stdout.trim()).toBe('MasterStub');
      expect(tree()).toEqual(built);
      expect(dockerfile).toMatch(/PYTHONPATH=\/app\/workers\/python/);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});
