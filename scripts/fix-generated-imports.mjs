// proto-loader-gen-types writes extension-less relative imports; NodeNext
// resolution (and Node's ESM loader) want explicit `.ts` extensions.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (path.endsWith('.ts')) {
      const text = readFileSync(path, 'utf8').replace(
        /from '(\.[^']+?)(?<!\.ts)'/g,
        "from '$1.ts'",
      );
      writeFileSync(path, text);
    }
  }
}
walk(new URL('../proto/generated', import.meta.url).pathname);
