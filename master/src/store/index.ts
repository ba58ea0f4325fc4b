export { openQueueStore } from './open-queue-store.ts';
export type {
  OpenQueueStoreOptions,
  QueueStore,
  QueueStoreKind,
  StoreQueue,
  StoreQueueOptions,
  StoreWorker,
  StoreWorkerOptions,
} from './types.ts';
export { redactUrl, storeKindForUrl } from './url.ts';
