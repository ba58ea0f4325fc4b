/**
 * The one message `flota master` sends its parent over Node's IPC channel when
 * `flota up` supervises it: where it listens, once it is ready.
 */
import { z } from 'zod';

export const masterReadySchema = z.object({
  type: z.literal('flota:master-ready'),
  httpUrl: z.string(),
  grpcPort: z.number().int(),
  mqttUrl: z.string(),
  /** An admin API token the supervisor may use (to issue its local workers' credentials). */
  adminToken: z.string().optional(),
});
export type MasterReady = z.infer<typeof masterReadySchema>;
