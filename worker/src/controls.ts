/**
 * What the worker does with a control message from the master, and how it
 * answers: a control that carries an id is acknowledged in the status the
 * worker republishes at once (`ack`), with a heartbeat out of turn, so the
 * master sees the new state (draining, slots, models) without waiting.
 */
import type { Logger } from '../../common/logger.ts';
import type { Control, LiveConfig } from '../../proto/src/schemas/task.ts';
import type { ControlAck } from '../../proto/src/schemas/worker.ts';
import type { TaskRunner } from './task-runner.ts';

/** What the worker may change while it runs, as its online status advertises it. */
export interface LiveSettings {
  slots: number;
  models: string[];
  weight: number;
  labels: Record<string, string>;
}

export interface ControlHandlerDeps {
  runner: TaskRunner;
  /** Changed in place by a `config` control; the online record is built from it. */
  settings: LiveSettings;
  /**
   * The models the provider can serve (a local provider: the files it has);
   * undefined when any name may do (a remote API is asked at run time).
   */
  servable?: () => ReadonlySet<string>;
  /** Republish the status (with `ack` when given) and beat once. */
  announce(ack?: ControlAck): void;
  /** Graceful stop; `restart`: exit so that the supervisor starts the worker again. */
  shutdown(restart: boolean): void;
  log: Logger;
}

/** Why a live config cannot be applied, or undefined when it can. */
export function refusalOf(config: LiveConfig, servable: ReadonlySet<string> | undefined) {
  if (!config.models || !servable) return undefined;
  const missing = config.models.filter((model) => !servable.has(model));
  if (missing.length === 0) return undefined;
  return `this worker's provider cannot serve ${missing.join(', ')} (it has: ${[...servable].join(', ') || 'none'})`;
}

export function createControlHandler(deps: ControlHandlerDeps): (control: Control) => void {
  const { runner, settings, log } = deps;
  const ack = (id: string | undefined, error?: string) =>
    deps.announce(id === undefined ? undefined : { id, ok: error === undefined, error });

  const configure = (id: string, config: LiveConfig) => {
    const refusal = refusalOf(config, deps.servable?.());
    if (refusal) {
      log.warn({ config, reason: refusal }, 'live config refused');
      ack(id, refusal);
      return;
    }
    runner.reconfigure({ slots: config.slots, models: config.models });
    if (config.slots !== undefined) settings.slots = config.slots;
    if (config.models !== undefined) settings.models = [...config.models];
    if (config.weight !== undefined) settings.weight = config.weight;
    if (config.labels !== undefined) settings.labels = { ...config.labels };
    log.info({ ...settings }, 'live config applied');
    ack(id);
  };

  return (control) => {
    switch (control.type) {
      case 'cancel':
        runner.cancel(control.taskId, control.attempt);
        return;
      case 'drain':
        runner.setDraining(true);
        ack(control.id);
        return;
      case 'resume':
        runner.setDraining(false);
        ack(control.id);
        return;
      case 'shutdown':
        log.info({ restart: control.restart === true }, 'shutdown requested by the master');
        runner.stopIntake();
        ack(control.id);
        deps.shutdown(control.restart === true);
        return;
      case 'config':
        configure(control.id, control.config);
        return;
      default: {
        const unknown: never = control;
        log.warn({ control: unknown }, 'unknown control message');
      }
    }
  };
}
