// The third step of `npm run build` (after tsc and copy-build-assets): bundles
// the compiled worker (dist/worker/src/main.js and everything it imports,
// node_modules included) into dist/bundle/worker.js with esbuild. `flota
// worker` loads that one file when it exists (cli/roles.ts): Node then reads,
// resolves and compiles one file instead of some 400 modules, which is most
// of the time from spawn to listed online. Running from the sources
// (bin/flota.mjs) there is no bundle, and the module graph loads as before.
//
// The bundle runs from dist/bundle/ with the same node_modules as the rest of
// dist/ (for the packages left external below), so:
// - every `import.meta.url` in a bundled file is rewritten to that file's
//   original location, relative to the bundle: proto/src/grpc.ts still finds
//   ../flota/v1/master.proto and worker/src/version.ts ../../package.json;
// - every `__dirname` / `__filename` of a bundled CommonJS file likewise
//   (grpc-js and pino read files next to themselves on paths the worker
//   rarely takes);
// - `require` exists (ESM output; the CommonJS packages inside call it);
// - common/errors.js stays outside, imported from dist/ as the CLI imports it:
//   cli/flota.ts tells a FlotaError (a message for a person, exit code 2 for
//   bad configuration) from a bug by its class, so both must be the same one.
// Left external: the provider SDKs (loaded only by their provider, on first
// use), node-llama-cpp (a native addon that finds its prebuilt binaries in
// the @node-llama-cpp packages next to it, loaded only by the llama provider)
// and ws's optional native helpers.
//
// Nothing changed since the last bundle (no input, the lockfile or this
// script newer than it): the bundle is kept, so a no-op build stays fast.
// Usage: node scripts/bundle-worker.mjs [outDir]   (default: dist)
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const dist = resolve(root, process.argv[2] ?? 'dist');
const outDir = join(dist, 'bundle');
const entry = join(dist, 'worker/src/main.js');
const output = join(outDir, 'worker.js');
const metaFile = join(outDir, 'meta.json');

const EXTERNAL = ['@google/genai', 'undici', 'node-llama-cpp', 'bufferutil', 'utf-8-validate'];
/** Compiled modules the bundle shares with the CLI instead of holding a copy. */
const SHARED = [join(dist, 'common/errors.js')];

// Every output file (the entry and its lazily loaded chunks, all in outDir) starts with these.
const BANNER = [
  "import { createRequire as __flotaCreateRequire } from 'node:module';",
  "import { fileURLToPath as __flotaFileURLToPath } from 'node:url';",
  'const require = __flotaCreateRequire(import.meta.url);',
  'const __flotaPath = (rel) => __flotaFileURLToPath(new URL(rel, import.meta.url));',
].join('\n');

/** `path` relative to the bundle's directory, as a URL path. */
const fromBundle = (path) => relative(outDir, path).split(sep).join('/');

// A bare identifier, not a property (`x.__dirname`) or part of a longer name.
const DIRNAME = /(?<![\w$.])__dirname(?![\w$])/g;
const FILENAME = /(?<![\w$.])__filename(?![\w$])/g;

/** Points the location-dependent expressions of one bundled file at where the file really is. */
function relocate(file, source) {
  const here = fromBundle(file);
  return source
    .replaceAll('import.meta.url', `new URL(${JSON.stringify(here)}, import.meta.url).href`)
    .replace(DIRNAME, `__flotaPath(${JSON.stringify(fromBundle(dirname(file)))})`)
    .replace(FILENAME, `__flotaPath(${JSON.stringify(here)})`);
}

const relocatePlugin = {
  name: 'relocate',
  setup(esbuild) {
    esbuild.onResolve({ filter: /^\./ }, (args) => {
      const path = resolve(args.resolveDir, args.path);
      return SHARED.includes(path) ? { path: `./${fromBundle(path)}`, external: true } : undefined;
    });
    esbuild.onLoad({ filter: /\.[cm]?js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!/import\.meta\.url|__dirname|__filename/.test(source)) return undefined;
      return { contents: relocate(args.path, source), loader: 'js' };
    });
  },
};

/** True when the bundle is newer than everything it was built from. */
function upToDate() {
  if (!existsSync(output) || !existsSync(metaFile)) return false;
  const builtAt = statSync(output).mtimeMs;
  const { inputs } = JSON.parse(readFileSync(metaFile, 'utf8'));
  const sources = [
    ...Object.keys(inputs).map((path) => resolve(root, path)),
    fileURLToPath(import.meta.url),
    join(root, 'package-lock.json'),
    join(root, 'node_modules/.package-lock.json'),
  ];
  return sources.every((path) => !existsSync(path) || statSync(path).mtimeMs <= builtAt);
}

if (!upToDate()) {
  // Replaced, not merged: chunk names carry a hash, and old ones must not pile up.
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  // Loaded only when there is something to bundle.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: { worker: entry },
    outdir: outDir,
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    splitting: true,
    chunkNames: '[name]-[hash]',
    external: EXTERNAL,
    banner: { js: BANNER },
    plugins: [relocatePlugin],
    metafile: true,
    logLevel: 'warning',
  });
  writeFileSync(metaFile, JSON.stringify({ inputs: result.metafile.inputs }));
}
