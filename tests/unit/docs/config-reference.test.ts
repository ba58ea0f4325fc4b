/**
 * docs/CONFIGURATION.md is generated from the config schemas; this fails when
 * the file on disk differs from what the generator renders now (a setting
 * added, removed, re-defaulted or re-described without `npm run gen:docs`).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cliConfigSchema } from '../../../cli/config.ts';
import { tokenOption, urlOption } from '../../../cli/master-api.ts';
import { documentedVariables } from '../../../common/env-schema.ts';
import { CONFIGURATION_DOC, renderConfigurationDoc } from '../../../scripts/gen-config-docs.ts';
import { WORKER_ENV_NAMES, workerConfigSchema } from '../../../worker/src/config.ts';

describe('docs/CONFIGURATION.md', () => {
  it('is what `npm run gen:docs` generates from the config schemas', () => {
    expect(
      readFileSync(CONFIGURATION_DOC, 'utf8'),
      'docs/CONFIGURATION.md is stale: run `npm run gen:docs`',
    ).toBe(renderConfigurationDoc());
  });

  it("documents every variable the worker's settings come from, and only those", () => {
    expect(new Set(documentedVariables(workerConfigSchema).map((v) => v.name))).toEqual(
      new Set(Object.values(WORKER_ENV_NAMES)),
    );
  });
});

describe('the CLI variables in the docs', () => {
  it("are the variables and defaults of the client commands' --url and --token", () => {
    const [url, token] = [urlOption(), tokenOption()];
    expect([url.envVar, token.envVar]).toEqual(Object.keys(cliConfigSchema.shape));
    expect(url.defaultValue).toBe(cliConfigSchema.shape.FLOTA_URL.parse(undefined));
    expect(token.defaultValue).toBeUndefined();
  });
});
