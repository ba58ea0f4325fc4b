/**
 * What scripts/swarm-test.sh hands the scenario runner, read once from the
 * environment.
 */
import { z } from 'zod';

const schema = z.object({
  /** The private engine's socket, unix:///… */
  DOCKER_HOST: z.string().startsWith('unix://'),
  REGISTRY: z.string().min(1),
  /** The tag deploy.sh deployed. */
  TAG: z.string().min(1),
  /** A second tag of the master image, for the rolling update. */
  NEXT_TAG: z.string().min(1),
  STACK: z.string().default('flota'),
  HTTP_PORT: z.coerce.number().int().min(1).max(65_535),
  SECRETS_DIR: z.string().min(1),
  /** Scratch space of this run (removed with the engine). */
  SWARM_WORK: z.string().min(1),
  /** The repository: the scripts run from there. */
  ROOT: z.string().min(1),
  /** Only these steps (comma-separated names), for working on one. */
  SWARM_STEPS: z.string().optional(),
});

export type SwarmConfig = z.infer<typeof schema>;

export function readConfig(env: NodeJS.ProcessEnv = process.env): SwarmConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`tests/swarm: run me through scripts/swarm-test.sh (${problems.join('; ')})`);
  }
  return parsed.data;
}
