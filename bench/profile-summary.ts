/**
 * Where the time went, from the `.cpuprofile` files of one run: for each
 * profiled process (the master, each echo worker), the share of its busy time
 * spent in each package or source file, counted inclusively (a function's
 * callees count for it too) and by self time. Idle time is left out; start-up
 * is in (it is short next to a throughput run).
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

const profileSchema = z.object({
  nodes: z.array(
    z.object({
      id: z.number(),
      callFrame: z.object({ functionName: z.string(), url: z.string() }),
      children: z.array(z.number()).optional(),
    }),
  ),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});
type Profile = z.infer<typeof profileSchema>;

export interface ProfiledProcess {
  pid: number;
  /** e.g. `embedded master`, `mosquitto worker echo-1`. */
  name: string;
}

export interface ProcessProfile {
  name: string;
  file: string;
  busyMs: number;
  /** The heaviest modules by inclusive share of busy time, highest first. */
  inclusive: Array<{ module: string; share: number }>;
  /** The heaviest by self time (where the CPU itself was). */
  self: Array<{ module: string; share: number }>;
}

const TOP = 12;

/**
 * A frame's module: the npm package, the repository file, module loading
 * (start-up), or, for a native frame, its function (`writev`, the garbage
 * collector). Node's other built-ins count only for self time: as callers they
 * are everywhere (events, streams) and say little.
 */
function moduleOf(url: string, functionName: string): string | undefined {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const own = /\/(dist\/)?((?:master|worker|common|proto|cli|autoscaler)\/.+?)\.(?:ts|js)$/.exec(
    url,
  );
  if (own) return own[2];
  if (
    url.startsWith('node:internal/modules') ||
    url.startsWith('node:internal/deps/cjs-module-lexer')
  ) {
    return '(loading modules)';
  }
  if (url.startsWith('node:')) return `(${url})`;
  return url === '' ? `(${functionName.replace(/^\((.*)\)$/, '$1')})` : undefined;
}

function summarize(profile: Profile): Omit<ProcessProfile, 'name' | 'file'> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);
  const inclusive = new Map<string, number>();
  const self = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    const leaf = byId.get(id);
    if (!leaf || leaf.callFrame.functionName === '(idle)') return;
    busy += delta;
    const own = moduleOf(leaf.callFrame.url, leaf.callFrame.functionName) ?? '(other)';
    self.set(own, (self.get(own) ?? 0) + delta);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)?.callFrame;
      const name = frame && moduleOf(frame.url, frame.functionName);
      if (name && (!name.startsWith('(') || name === '(loading modules)')) seen.add(name);
    }
    for (const name of seen) inclusive.set(name, (inclusive.get(name) ?? 0) + delta);
  });
  const top = (counts: Map<string, number>) =>
    [...counts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP)
      .map(([module, us]) => ({ module, share: busy > 0 ? us / busy : 0 }));
  return { busyMs: busy / 1000, inclusive: top(inclusive), self: top(self) };
}

/** Summarizes the main-thread profile of each process in `dir`; writes `summary.txt` there too. */
export async function summarizeProfiles(
  dir: string,
  processes: ProfiledProcess[],
): Promise<{ profiles: ProcessProfile[]; text: string }> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  const profiles: ProcessProfile[] = [];
  for (const proc of processes) {
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread.
    const file = files.find((f) => f.split('.')[3] === String(proc.pid) && f.split('.')[4] === '0');
    if (!file) continue;
    const parsed = profileSchema.safeParse(JSON.parse(await readFile(join(dir, file), 'utf8')));
    if (!parsed.success) continue;
    profiles.push({ name: proc.name, file, ...summarize(parsed.data) });
  }
  const pct = (share: number) => `${(share * 100).toFixed(1).padStart(5)}%`;
  const text = profiles
    .map((p) =>
      [
        `${p.name} (${p.file}): ${Math.round(p.busyMs)} ms busy`,
        '  inclusive                                  self',
        ...Array.from({ length: TOP }, (_, i) => {
          const inc = p.inclusive[i];
          const own = p.self[i];
          const left = inc ? `${pct(inc.share)} ${inc.module}` : '';
          return `  ${left.padEnd(42)} ${own ? `${pct(own.share)} ${own.module}` : ''}`.trimEnd();
        }),
      ].join('\n'),
    )
    .join('\n\n');
  await writeFile(join(dir, 'summary.txt'), `${text}\n`);
  return { profiles, text };
}
