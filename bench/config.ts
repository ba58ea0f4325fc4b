/**
 * The only place the benchmark reads the environment: the base environment of
 * every process it spawns (this one's PATH, HOME… without any flota setting
 * that could leak in from the caller's shell).
 */

export { baseChildEnv } from '../tests/helpers/child-env.ts';
