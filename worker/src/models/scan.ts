/**
 * The GGUF files in MODELS_DIR, found by name alone (no file is opened), so
 * the configuration can list them synchronously at start. A model split in
 * parts (`name-00001-of-00003.gguf`) counts once, by its first part.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface ModelFile {
  /** What tasks call the model: the file name without `.gguf` (and without a split suffix). */
  name: string;
  /** The file to load (the first part of a split model). */
  path: string;
  /** Bytes on disk, every part of a split model included. */
  sizeBytes: number;
}

const GGUF = /\.gguf$/i;
const SPLIT = /-(\d{5})-of-(\d{5})\.gguf$/i;

/** The models in `dir`, sorted by name; a directory that cannot be read throws. */
export function scanModelsDir(dir: string): ModelFile[] {
  const files = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => (entry.isFile() || entry.isSymbolicLink()) && GGUF.test(entry.name))
    .map((entry) => entry.name);
  const models = new Map<string, ModelFile>();
  for (const file of files) {
    const split = SPLIT.exec(file);
    const name = split ? file.slice(0, split.index) : file.replace(GGUF, '');
    if (name === '') continue;
    const size = statSync(join(dir, file)).size;
    const known = models.get(name);
    if (known) {
      known.sizeBytes += size;
      if (split?.[1] === '00001') known.path = join(dir, file);
      continue;
    }
    models.set(name, { name, path: join(dir, file), sizeBytes: size });
  }
  return [...models.values()].sort((a, b) => a.name.localeCompare(b.name));
}
