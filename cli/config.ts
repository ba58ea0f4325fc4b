/**
 * The CLI's configuration source. `environment()` is the CLI's single read of
 * the process environment: each command takes it once and passes it on to the
 * config loaders (loadMasterConfig, loadAutoscalerConfig, …) and to the child
 * processes it starts, so nothing below the CLI reads `process.env` itself.
 *
 * `cliConfigSchema` holds the variables the client commands (`flota submit`,
 * `flota workers`, `flota token`, `flota doctor`) fall back on when a flag is
 * not given, in the same convention as the processes' schemas, so
 * docs/CONFIGURATION.md lists them too. Commander reads them as the flags'
 * `.env()` (master-api.ts); tests/unit/docs/config-reference.test.ts holds the
 * flags to these names and defaults.
 */
import { z } from 'zod';

/** The environment this `flota` process was started with. */
export function environment(): NodeJS.ProcessEnv {
  return process.env;
}

export const cliConfigSchema = z.object({
  FLOTA_URL: z
    .url({ protocol: /^https?$/ })
    .default('http://127.0.0.1:8080')
    .describe(
      "The master's HTTP address for `flota submit`, `flota workers` and `flota token`; `--url` wins",
    ),
  FLOTA_TOKEN: z
    .string()
    .optional()
    .describe(
      'The API token `flota submit`, `flota workers`, `flota token` and `flota doctor` present, when the master sets `API_TOKENS`; `--token` wins',
    ),
});
