/**
 * Everything the benchmark starts registers how to undo it here. `run()`
 * undoes it in reverse order, once, each step bounded in time; a second
 * Ctrl-C (or the process exiting) SIGKILLs whatever is left.
 */
import { hurryStops, killAllGroups } from './processes.ts';

const STEP_TIMEOUT_MS = 20_000;

interface Step {
  what: string;
  undo: () => Promise<unknown> | unknown;
  /** Set once the step started; later calls share it. */
  running?: Promise<void>;
}

export class Cleanup {
  private readonly steps: Step[] = [];
  private readonly started = new Set<Promise<void>>();
  private running: Promise<void> | undefined;
  /** True once Ctrl-C / SIGTERM started the cleanup. */
  interrupted = false;

  /** Registers `undo`; returns a function that runs it now (once; later calls share it). */
  add(what: string, undo: Step['undo']): () => Promise<void> {
    const step: Step = { what, undo };
    this.steps.push(step);
    return () => this.start(step);
  }

  private start(step: Step): Promise<void> {
    if (!step.running) {
      const at = this.steps.indexOf(step);
      if (at >= 0) this.steps.splice(at, 1);
      const running = runStep(step);
      step.running = running;
      this.started.add(running);
      void running.then(() => this.started.delete(running));
    }
    return step.running;
  }

  /** Undoes everything not yet undone, newest first, and waits for steps already under way. */
  run(): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length > 0) await this.start(this.steps.at(-1) as Step);
      await Promise.all([...this.started]);
    })();
    return this.running;
  }

  /**
   * Ctrl-C / SIGTERM: clean up, then exit 130. A second signal, or the process
   * exiting for any other reason, kills every child group at once.
   */
  installSignalHandlers(onSignal: (signal: NodeJS.Signals) => void): void {
    const handler = (signal: NodeJS.Signals) => {
      if (this.interrupted) {
        killAllGroups();
        process.exit(130);
      }
      this.interrupted = true;
      hurryStops();
      onSignal(signal);
      void this.run().finally(() => process.exit(130));
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
    process.on('exit', killAllGroups);
  }
}

async function runStep(step: Step): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      process.stderr.write(`cleanup: ${step.what} did not finish in time; moving on\n`);
      resolve();
    }, STEP_TIMEOUT_MS);
  });
  try {
    await Promise.race([Promise.resolve().then(step.undo), timeout]);
  } catch (err) {
    process.stderr.write(`cleanup: ${step.what} failed: ${(err as Error).message}\n`);
  } finally {
    clearTimeout(timer);
  }
}
