/**
 * `flota` — one CLI for every role: up (all-in-one), master, worker,
 * autoscale, submit, workers, token, doctor. A bare `flota master` or `flota
 * worker` (as flota up, the images and the autoscaler start them) starts at
 * once, without loading the other commands; everything else goes through
 * the full CLI (cli/program.ts).
 */
import { describeError, exitCodeOf, FlotaError } from '../common/errors.ts';
import { ROLES } from './roles.ts';

const [first, ...rest] = process.argv.slice(2);
const bareRole =
  rest.length === 0 && (first === 'master' || first === 'worker') ? first : undefined;

try {
  if (bareRole) await ROLES[bareRole]();
  else await (await import('./program.ts')).runProgram(process.argv);
} catch (err) {
  // A FlotaError is for a person to act on: its text, no stack. Anything else is a bug: all of it.
  if (err instanceof FlotaError) console.error(describeError(err));
  else console.error(err);
  process.exit(exitCodeOf(err));
}
