/** The long-running roles, each loading only its own code when it starts. */
export const ROLES = {
  master: async (): Promise<void> => {
    const { runMasterFromEnv } = await import('../master/src/main.ts');
    await runMasterFromEnv();
  },
  worker: async (): Promise<void> => {
    const { runWorkerFromEnv } = await import('../worker/src/main.ts');
    await runWorkerFromEnv();
  },
} as const;
