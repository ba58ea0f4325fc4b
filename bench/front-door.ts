/**
 * `npm run bench:front-door`: what flota adds to a streamed answer. A model
 * server speaking the OpenAI streaming API (a fixed time to the first token,
 * then one token every --token-ms) is called twice by the official `openai`
 * client: directly, and through flota (`/v1/chat/completions` on a master
 * with a Redis store and its embedded broker, one worker with
 * PROVIDER=openai in front of the same server). Each way runs the same
 * requests one at a time and then --concurrency at once, and the table gives
 * time to first token and tokens per second of each stream, with the ratios
 * flota ÷ direct. Progress on stderr, a table on stdout, JSON in bench/results/.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import OpenAI from 'openai';
import { z } from 'zod';
import { Cleanup } from './cleanup.ts';
import { parseFlags } from './flags.ts';
import { useCompiledBuild } from './processes.ts';
import { Progress } from './progress.ts';
import {
  spawnWorker,
  startMasterProcess,
  startRedisServer,
  tempDir,
  waitForOnline,
  workerCredential,
} from './system.ts';

const DEFAULT_RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
const MODEL = 'bench-model';

const int = (min: number, max = 100_000) => z.coerce.number().int().min(min).max(max);
const optionsSchema = z.object({
  requests: int(1),
  concurrency: int(1, 1_024),
  tokens: int(2, 100_000),
  tokenMs: int(0, 10_000),
  firstTokenMs: int(0, 60_000),
  warmup: int(0),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
  resultsDir: z.string().min(1),
  quiet: z.boolean(),
});
type Options = z.infer<typeof optionsSchema>;

const program = new Command()
  .name('bench:front-door')
  .description(
    'time to first token and tokens/s through flota /v1, against the model server directly',
  )
  .option('--requests <n>', 'requests one at a time, each way', '20')
  .option('--concurrency <n>', 'streams at once in the concurrent run (as many requests)', '32')
  .option('--tokens <n>', 'tokens in each answer', '200')
  .option('--token-ms <n>', 'the model server streams one token every N ms', '5')
  .option('--first-token-ms <n>', 'the model server waits N ms before the first token', '50')
  .option('--warmup <n>', 'requests each way before measuring', '5')
  .option('--log-level <level>', "flota processes' log level", 'warn')
  .option('--results-dir <dir>', 'where the JSON report goes', DEFAULT_RESULTS)
  .option('--quiet', 'no progress on stderr', false);

/** A model server: OpenAI's streaming chat API with a fixed pace (one token = one delta). */
async function startModelServer(opts: Options): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const send = (payload: unknown) => res.write(`data: ${JSON.stringify(payload)}\n\n`);
      const delta = (content: string) => ({
        id: 'chatcmpl-bench',
        object: 'chat.completion.chunk',
        created: 0,
        model: MODEL,
        choices: [{ index: 0, delta: { content }, finish_reason: null }],
      });
      let sent = 0;
      const next = () => {
        if (res.destroyed) return;
        send(delta(`t${sent} `));
        sent += 1;
        if (sent < opts.tokens) {
          setTimeout(next, opts.tokenMs);
          return;
        }
        send({ ...delta(''), choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
        send({
          id: 'chatcmpl-bench',
          object: 'chat.completion.chunk',
          created: 0,
          model: MODEL,
          choices: [],
          usage: {
            prompt_tokens: 4,
            completion_tokens: opts.tokens,
            total_tokens: opts.tokens + 4,
          },
        });
        res.end('data: [DONE]\n\n');
      };
      setTimeout(next, opts.firstTokenMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1`, server };
}

interface Sample {
  ttftMs: number;
  tokensPerS: number;
}

/** One streamed request: time to the first content, and tokens per second after it. */
async function streamOnce(client: OpenAI, tokens: number): Promise<Sample> {
  const start = performance.now();
  let first: number | undefined;
  let last = start;
  let text = '';
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'stream me an answer' }],
    stream: true,
    // flota's result cache would answer repeats without the model.
    ...({ flota: { cache: false } } as object),
  });
  for await (const chunk of stream) {
    const content = chunk.choices[0]?.delta?.content;
    if (!content) continue;
    first ??= performance.now();
    last = performance.now();
    text += content;
  }
  const expected = Array.from({ length: tokens }, (_, i) => `t${i} `).join('');
  if (text !== expected) throw new Error(`answer differs: ${text.slice(0, 80)}…`);
  const firstAt = first ?? last;
  return {
    ttftMs: firstAt - start,
    tokensPerS: (tokens - 1) / Math.max((last - firstAt) / 1000, 1e-6),
  };
}

interface Figures {
  ttftP50: number;
  ttftP95: number;
  tokensPerSP50: number;
}

function figures(samples: Sample[]): Figures {
  const pct = (values: number[], p: number) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
  };
  const ttft = samples.map((s) => s.ttftMs);
  return {
    ttftP50: pct(ttft, 0.5),
    ttftP95: pct(ttft, 0.95),
    tokensPerSP50: pct(
      samples.map((s) => s.tokensPerS),
      0.5,
    ),
  };
}

async function measure(
  client: OpenAI,
  opts: Options,
): Promise<{ solo: Figures; concurrent: Figures }> {
  for (let i = 0; i < opts.warmup; i++) await streamOnce(client, opts.tokens);
  const solo: Sample[] = [];
  for (let i = 0; i < opts.requests; i++) solo.push(await streamOnce(client, opts.tokens));
  const concurrent = await Promise.all(
    Array.from({ length: opts.concurrency }, () => streamOnce(client, opts.tokens)),
  );
  return { solo: figures(solo), concurrent: figures(concurrent) };
}

async function main(): Promise<void> {
  const opts = parseFlags(program, optionsSchema);
  const progress = new Progress(process.stderr, opts.quiet);
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers(() => progress.note('interrupted: cleaning up'));
  try {
    await useCompiledBuild();
    const model = await startModelServer(opts);
    cleanup.add('model server', () => new Promise((resolve) => model.server.close(resolve)));
    const client = (baseURL: string) =>
      new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });

    progress.note('direct: the model server, no flota');
    const direct = await measure(client(model.url), opts);

    progress.note('through flota: master (Redis store, embedded broker) + one openai worker');
    const redis = await startRedisServer(cleanup);
    const master = await startMasterProcess(cleanup, {
      redisUrl: redis.url,
      namespace: `fd${Date.now()}`,
      dataDir: await tempDir(cleanup, 'flota-bench-fd-'),
      logLevel: opts.logLevel,
    });
    spawnWorker(cleanup, {
      id: 'fd-worker',
      credential: await workerCredential(master, 'fd-worker'),
      mqttUrl: master.mqttUrl,
      grpcPort: master.grpcPort,
      slots: Math.max(opts.concurrency, 1),
      logLevel: opts.logLevel,
      env: { PROVIDER: 'openai', OPENAI_BASE_URL: model.url, MODELS: MODEL },
    });
    await waitForOnline(master.baseUrl, (id) => id === 'fd-worker', 1, { timeoutMs: 30_000 });
    const flota = await measure(client(`${master.baseUrl}/v1`), opts);

    const report = { params: opts, direct, flota, at: new Date().toISOString() };
    const ratio = (a: number, b: number) => (b === 0 ? '-' : (a / b).toFixed(2));
    const ms = (v: number) => `${v.toFixed(1)} ms`;
    const added = (v: number) => `${v < 0 ? '−' : '+'}${Math.abs(v).toFixed(1)} ms`;
    const row = (what: string, d: Figures, f: Figures) => [
      `${what} time to first token p50`.padEnd(40) +
        `${ms(d.ttftP50).padStart(10)} ${ms(f.ttftP50).padStart(10)}  ${added(f.ttftP50 - d.ttftP50)}  ×${ratio(f.ttftP50, d.ttftP50)}`,
      `${what} time to first token p95`.padEnd(40) +
        `${ms(d.ttftP95).padStart(10)} ${ms(f.ttftP95).padStart(10)}  ${added(f.ttftP95 - d.ttftP95)}  ×${ratio(f.ttftP95, d.ttftP95)}`,
      `${what} tokens/s per stream p50`.padEnd(40) +
        `${d.tokensPerSP50.toFixed(0).padStart(10)} ${f.tokensPerSP50.toFixed(0).padStart(10)}  ×${ratio(f.tokensPerSP50, d.tokensPerSP50)}`,
    ];
    const lines = [
      `front door: ${opts.tokens} tokens, first after ${opts.firstTokenMs} ms, then one every ${opts.tokenMs} ms`,
      `${''.padEnd(40)}${'direct'.padStart(10)} ${'flota'.padStart(10)}  flota − direct, ÷ direct`,
      ...row(`alone (${opts.requests})`, direct.solo, flota.solo),
      ...row(`${opts.concurrency} at once`, direct.concurrent, flota.concurrent),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    await mkdir(opts.resultsDir, { recursive: true });
    const path = join(opts.resultsDir, `front-door-${Date.now()}.json`);
    await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
    progress.note(`report: ${path}`);
  } finally {
    await cleanup.run();
  }
}

await main();
