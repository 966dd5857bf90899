import type { ReconcileResult } from '../controller/controller.js';

/**
 * The stored value moved since the cache saw it (another writer, or our own echo not yet
 * seen): not an error, just try again shortly, after the watch has caught up.
 */
export const CONFLICT: ReconcileResult = Object.freeze({ requeue: true });
