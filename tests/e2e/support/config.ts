/** The only place the e2e suite reads the environment. */

/** FLOTA_TEST_LOGS=1 prints every spawned process's output, not only on failure. */
export const SHOW_LOGS = process.env.FLOTA_TEST_LOGS === '1';

export { baseChildEnv } from '../../helpers/child-env.ts';
