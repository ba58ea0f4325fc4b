// The second half of `npm run build` (after tsc): copies into dist/ the files
// the compiled code reads by a path relative to itself, so dist/ runs on its
// own (the images ship dist/ and node_modules/ only). dist/ mirrors the
// repository's layout, so those relative paths are the same as in the sources:
//   web/                 the master's static files (master/src/http/app.ts)
//   proto/flota/         the .proto files gRPC loads (proto/src/grpc.ts)
//   package.json         version and engines (worker/src/version.ts,
//                        cli/doctor/node-version.ts); also "type": "module"
// Usage: node scripts/copy-build-assets.mjs [outDir]   (default: dist)
import { cpSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const dist = resolve(root, process.argv[2] ?? 'dist');

for (const dir of ['web', 'proto/flota']) {
  // Replaced, not merged: a file deleted from the sources leaves dist/ too.
  rmSync(join(dist, dir), { recursive: true, force: true });
  cpSync(join(root, dir), join(dist, dir), { recursive: true });
}
cpSync(join(root, 'package.json'), join(dist, 'package.json'));
