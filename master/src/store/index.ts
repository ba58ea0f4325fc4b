export { openQueueStore } from './open-queue-store.ts';
export type { OpenQueueStoreOptions, QueueStore, QueueStoreKind } from './types.ts';
export { redactUrl, storeKindForUrl } from './url.ts';
