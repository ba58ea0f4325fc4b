/**
 * The per-model view of the fleet (`GET /api/models`, `GET /v1/models`):
 * built on demand from the worker records in one pass, so a heartbeat costs
 * the registry nothing more than keeping its latest list of loaded models.
 */
import { MAX_MODEL_WORKER_IDS, type ModelEntry } from '../../../proto/src/schemas/models.ts';
import type { ModelInfo, ProviderName } from '../../../proto/src/schemas/worker.ts';
import { freeSlots, isTakingWork, type WorkerRecord } from './worker-record.ts';

/** A model's entry while the records are read; sums become means at the end. */
interface Tally {
  entry: ModelEntry;
  providers: Set<ProviderName>;
  memMbSum: number;
  loadMsSum: number;
}

function newTally(name: string): Tally {
  return {
    entry: {
      name,
      providers: [],
      kinds: [],
      local: false,
      workers: { cpu: 0, gpu: 0 },
      workerIds: [],
      loaded: { cpu: 0, gpu: 0 },
      loadedIds: [],
      freeSlots: 0,
    },
    providers: new Set(),
    memMbSum: 0,
    loadMsSum: 0,
  };
}

/** What a catalog says of a model, where no worker before it (by id) said it. */
function takeCatalog(entry: ModelEntry, info: ModelInfo | undefined): void {
  if (!info) return;
  if (entry.sizeBytes === undefined && info.sizeBytes !== undefined)
    entry.sizeBytes = info.sizeBytes;
  if (entry.quantization === undefined && info.quantization !== undefined)
    entry.quantization = info.quantization;
  if (entry.contextLength === undefined && info.contextLength !== undefined)
    entry.contextLength = info.contextLength;
}

/** Adds one online worker to the tallies of the models it serves. */
function count(tallies: Map<string, Tally>, record: WorkerRecord): void {
  const { status } = record;
  const catalog = status.catalog
    ? new Map(status.catalog.map((info) => [info.name, info]))
    : undefined;
  const free = isTakingWork(record) ? freeSlots(record) : 0;
  for (const model of status.models) {
    let tally = tallies.get(model);
    if (!tally) {
      tally = newTally(model);
      tallies.set(model, tally);
    }
    const { entry } = tally;
    const info = catalog?.get(model);
    if (info) tally.providers.add(info.provider);
    else for (const provider of status.providers) tally.providers.add(provider);
    takeCatalog(entry, info);
    entry.workers[status.kind] += 1;
    if (entry.workerIds.length < MAX_MODEL_WORKER_IDS) entry.workerIds.push(status.id);
    entry.freeSlots += free;
    if (record.local?.has(model) !== true) continue;
    entry.local = true;
    const loaded = record.heartbeat?.loaded?.find((l) => l.name === model);
    if (!loaded) continue;
    entry.loaded[status.kind] += 1;
    if (entry.loadedIds.length < MAX_MODEL_WORKER_IDS) entry.loadedIds.push(status.id);
    tally.memMbSum += loaded.memMb;
    tally.loadMsSum += loaded.loadMs;
  }
}

/**
 * Every model some online worker serves, sorted by name. `records` come in
 * id order (the registry keeps them so), which orders the ids listed and
 * decides whose catalog speaks first.
 */
export function modelEntries(records: Iterable<WorkerRecord>): ModelEntry[] {
  const tallies = new Map<string, Tally>();
  for (const record of records) if (record.state === 'online') count(tallies, record);
  const entries: ModelEntry[] = [];
  for (const { entry, providers, memMbSum, loadMsSum } of tallies.values()) {
    entry.providers = [...providers].sort();
    if (entry.workers.cpu > 0) entry.kinds.push('cpu');
    if (entry.workers.gpu > 0) entry.kinds.push('gpu');
    const holders = entry.loaded.cpu + entry.loaded.gpu;
    if (holders > 0) {
      entry.memMb = Math.round(memMbSum / holders);
      entry.loadMs = Math.round(loadMsSum / holders);
    }
    entries.push(entry);
  }
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
