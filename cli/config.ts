/**
 * The CLI's configuration source. `environment()` is the CLI's single read of
 * the process environment: each command takes it once and passes it on to the
 * config loaders (loadMasterConfig, loadAutoscalerConfig, …) and to the child
 * processes it starts, so nothing below the CLI reads `process.env` itself.
 */

/** The environment this `flota` process was started with. */
export function environment(): NodeJS.ProcessEnv {
  return process.env;
}
