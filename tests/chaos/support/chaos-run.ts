/**
 * One chaos run end to end: start the system as processes, submit the tasks
 * from several sessions spread over the fault window while the faults run,
 * wait (bounded) until every task is terminal, stop everything, and turn what
 * was seen into figures and a list of broken invariants.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../helpers/wait-for.ts';
import { type BadInputReport, sendBadInput, type WorkerLogin } from './bad-input.ts';
import { ChaosCluster, type ChaosMode, ECHO_CHUNK_SIZE } from './cluster.ts';
import type { ChaosSettings } from './config.ts';
import { FaultTimeline } from './faults.ts';
import { type ChaosFigures, formatFigures, problemsOf, writeFigures } from './figures.ts';
import { ProcessBook } from './process-book.ts';
import { chaosPrompt, longChaosPrompt, seededRng } from './random.ts';
import { ServerView } from './server-view.ts';
import { SessionClient } from './session-client.ts';
import { TaskLedger } from './task-ledger.ts';
import { V1StreamClient } from './v1-stream-client.ts';

export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

const KILL_EVERY_MS = 2_000;
const PAUSE_MS = 4_500;
const REDIS_DOWN_MS = 5_000;
/** Streaming mode: one /v1 stream for every this many session tasks. */
const TASKS_PER_V1_STREAM = 4;

export interface ChaosOutcome {
  figures: ChaosFigures;
  problems: string[];
  report: string;
}

export class ChaosRun {
  readonly logDir: string;
  private readonly rng;
  private readonly book: ProcessBook;
  private readonly cluster: ChaosCluster;
  private readonly sessions: SessionClient[] = [];
  private stopped: Promise<void> | undefined;

  constructor(
    readonly mode: ChaosMode,
    private readonly settings: ChaosSettings,
  ) {
    this.rng = seededRng(settings.seed);
    this.logDir = join(RESULTS_DIR, `logs-${mode}`);
    this.book = new ProcessBook(this.logDir);
    this.cluster = new ChaosCluster(mode, settings, this.book);
  }

  async execute(): Promise<ChaosOutcome> {
    const { settings, cluster, book, rng } = this;
    await rm(this.logDir, { recursive: true, force: true });
    await mkdir(this.logDir, { recursive: true });
    const ledgers: TaskLedger[] = [];
    const completedSince = (since: number) =>
      ledgers.some((l) => (l.completionTimes.at(-1) ?? 0) > since);
    const anyPending = () => ledgers.some((l) => !l.settled());
    const timeline = new FaultTimeline(cluster, book, rng, completedSince, anyPending);
    const server = new ServerView(book);
    const startedAt = Date.now();
    await cluster.start();

    for (let s = 0; s < settings.sessions; s++) {
      const ledger = new TaskLedger(ECHO_CHUNK_SIZE);
      ledgers.push(ledger);
      const sessionId = `chaos-${this.mode}-s${s + 1}-${settings.seed}`;
      this.sessions.push(new SessionClient(cluster.baseUrl, sessionId, ledger));
    }
    await waitFor(() => this.sessions.every((c) => c.isReady()), {
      timeoutMs: 15_000,
      what: 'every session to connect and say hello',
    });

    const t0 = Date.now();
    const { windowMs, drainMs } = settings;
    const deadlineAt = t0 + windowMs + drainMs;
    const scheduled: Array<Promise<void>> = [];
    let badInput: BadInputReport = { sent: 0, unexpected: ['bad input was never sent'] };
    scheduled.push(
      // Early, before the big faults: each probe must be refused by a master that is up.
      this.later(t0, 200, async () => {
        badInput = await sendBadInput(
          cluster.baseUrl,
          cluster.mqttPort,
          cluster.workerIds[0] as string,
          cluster.insider as WorkerLogin,
        );
      }),
    );
    const streaming = this.mode === 'streaming';
    const promptOf = streaming ? longChaosPrompt : chaosPrompt;
    this.sessions.forEach((client, s) => {
      const count =
        Math.floor(settings.tasks / settings.sessions) +
        (s < settings.tasks % settings.sessions ? 1 : 0);
      for (let i = 0; i < count; i++) {
        const prompt = promptOf(rng, `${client.sessionId} #${i}`);
        const sub = client.ledger.add(`c${i}`, prompt);
        const when = ((i + rng.next() * 0.5) / count) * windowMs;
        scheduled.push(this.later(t0, when, () => void client.submit(sub, deadlineAt)));
      }
      // A network blip per session: the transport drops and Socket.IO reconnects.
      scheduled.push(this.later(t0, windowMs * (0.1 + 0.8 * rng.next()), () => client.blip()));
    });
    const v1 = streaming ? new V1StreamClient(cluster.baseUrl, 'echo') : undefined;
    if (v1) {
      const count = Math.ceil(settings.tasks / TASKS_PER_V1_STREAM);
      for (let i = 0; i < count; i++) {
        const prompt = longChaosPrompt(rng, `v1-${settings.seed} #${i}`);
        const request = { prompt, expected: `echo: ${prompt}` };
        const when = ((i + rng.next() * 0.5) / count) * windowMs;
        scheduled.push(this.later(t0, when, () => v1.send(request, deadlineAt)));
      }
    }

    await Promise.all([
      timeline.run(t0, {
        windowMs,
        killEveryMs: KILL_EVERY_MS,
        pauseMs: PAUSE_MS,
        redisDownMs: REDIS_DOWN_MS,
      }),
      ...scheduled,
    ]);
    const settled = () => ledgers.every((l) => l.settled());
    // Faults that ran late (a slow restart) still leave the tasks half the drain time.
    const drainUntil = Math.max(deadlineAt, Date.now() + drainMs / 2);
    await waitFor(settled, {
      timeoutMs: drainUntil - Date.now(),
      intervalMs: 100,
      what: 'every task terminal',
    }).catch(() => undefined);
    const v1Outcome = await v1?.settle();
    timeline.finish();

    const serverVerdict = await server.verdict(cluster.baseUrl, ledgers);
    await this.stop();

    const figures = this.figures(ledgers, timeline, serverVerdict, badInput, t0, startedAt);
    if (v1Outcome) figures.v1 = v1Outcome;
    const problems = problemsOf(figures);
    const report = formatFigures(figures, problems);
    await writeFigures(RESULTS_DIR, figures, problems);
    return { figures, problems, report };
  }

  /** Closes the sessions and stops every process; idempotent, safe after a failure. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      for (const client of this.sessions) client.close();
      await this.cluster.stop();
      await this.book.closeFiles();
    })();
    return this.stopped;
  }

  private later(t0: number, offsetMs: number, fn: () => unknown): Promise<void> {
    return new Promise((resolve, reject) => {
      setTimeout(
        () => {
          Promise.resolve()
            .then(fn)
            .then(() => resolve(), reject);
        },
        Math.max(0, t0 + offsetMs - Date.now()),
      );
    });
  }

  private figures(
    ledgers: TaskLedger[],
    timeline: FaultTimeline,
    server: ChaosFigures['server'],
    badInput: BadInputReport,
    t0: number,
    startedAt: number,
  ): ChaosFigures {
    const verdicts = ledgers.map((l) => l.verdict());
    const sum = (pick: (v: (typeof verdicts)[number]) => number) =>
      verdicts.reduce((n, v) => n + pick(v), 0);
    const stats = this.sessions.map((c) => c.stats);
    const sumStats = (pick: (s: (typeof stats)[number]) => number) =>
      stats.reduce((n, s) => n + pick(s), 0);
    const merge = (records: Array<Record<string, number>>) => {
      const out: Record<string, number> = {};
      for (const r of records) for (const [k, n] of Object.entries(r)) out[k] = (out[k] ?? 0) + n;
      return out;
    };
    const completions = ledgers.flatMap((l) => l.completionTimes).sort((a, b) => a - b);
    const s = (t: number | undefined) =>
      t === undefined ? undefined : Math.round((t - t0) / 100) / 10;
    const faults = timeline.faults.map((f) => {
      const next = completions.find((t) => t > f.recoveryFrom);
      return {
        kind: f.kind,
        target: f.target,
        atS: s(f.at) as number,
        endS: s(f.endAt),
        detectionMs: f.detectedAt === undefined ? undefined : f.detectedAt - f.at,
        detectedAs: f.detectedAs,
        rejoinMs:
          f.rejoinedAt === undefined || f.endAt === undefined ? undefined : f.rejoinedAt - f.endAt,
        recoveryMs: next === undefined ? undefined : next - f.recoveryFrom,
        masterWasDown: f.masterWasDown,
        error: f.error,
      };
    });
    const max = (values: Array<number | undefined>) => {
      const known = values.filter((v): v is number => v !== undefined);
      return known.length === 0 ? null : Math.max(...known);
    };
    const { showLogs: _showLogs, seed, ...settings } = this.settings;
    const lost = verdicts.flatMap((v) => v.lost);
    return {
      mode: this.mode,
      seed,
      settings,
      runMs: Date.now() - startedAt,
      tasks: sum((v) => v.submitted),
      acked: sum((v) => v.acked),
      completed: sum((v) => v.completed),
      failed: sum((v) => v.failed),
      failedReasons: merge(verdicts.map((v) => v.failedReasons)),
      duplicates: sum((v) => v.duplicates),
      replayedFiltered: sumStats((x) => x.replayedFiltered),
      lost: lost.length,
      lostTasks: lost.map((sub) => ({
        taskId: sub.taskId,
        clientId: sub.clientId,
        rest: sub.taskId ? server.lostStates[sub.taskId] : undefined,
        errors: sub.errors.slice(-3),
      })),
      abandonedSubmits: verdicts
        .flatMap((v) => v.unaccepted)
        .map((x) => ({
          clientId: x.clientId,
          reason: x.abandoned ?? x.errors.at(-1) ?? 'no answer yet',
        })),
      staleChunks: sum((v) => v.staleChunks),
      revokedAnswers: verdicts.flatMap((v) => v.revokedAnswers),
      mismatchedAnswers: verdicts.flatMap((v) => v.mismatchedAnswers),
      mismatchedChunks: sum((v) => v.mismatchedChunks),
      doubleSubmits: verdicts.flatMap((v) => v.doubleSubmits),
      foreignTasks: verdicts.flatMap((v) => v.foreignTasks),
      unstampedEvents: sumStats((x) => x.unstamped),
      retryingEvents: sum((v) => v.retrying),
      continuedAttempts: sum((v) => v.continued),
      restartedAttempts: sum((v) => v.restarted),
      brokenDisplays: verdicts.flatMap((v) => v.brokenDisplays),
      submitSends: sum((v) => v.submitSends),
      submitTimeouts: sumStats((x) => x.submitTimeouts),
      submitRefusals: merge(stats.map((x) => x.submitRefusals)),
      sessions: {
        connects: sumStats((x) => x.connects),
        epochChanges: sumStats((x) => x.epochChanges),
        helloFailures: sumStats((x) => x.helloFailures),
        resumed: {
          fresh: sumStats((x) => x.resumed.fresh),
          replay: sumStats((x) => x.resumed.replay),
          resync: sumStats((x) => x.resumed.resync),
        },
      },
      server,
      faults,
      maxDetectionMs: max(faults.filter((f) => !f.masterWasDown).map((f) => f.detectionMs)),
      maxRecoveryMs: max(faults.map((f) => f.recoveryMs)),
      badInput,
      processes: {
        started: this.book.all.length,
        crashes: this.book.crashes(),
        unexpectedExits: this.book.unexpectedExits(),
        errorLines: Object.fromEntries(
          this.book.all
            .filter((p) => Object.keys(p.errors).length > 0)
            .map((p) => [`${p.name} ${p.process.pid}`, p.errors]),
        ),
      },
    };
  }
}
