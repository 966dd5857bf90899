// Operator-requested resyncs as a reconciler: a key under /statemanager/resync/ is turned into
// queued work, then deleted if it is still the request that was applied. It goes through the
// work queue like every other key, so a failed delete is retried with backoff and a request
// written twice while waiting is applied once.
import { REQUEUE, type Reconciler, type ReconcileResult } from '../controller/controller.js';
import type { Logger } from '../controller/logger.js';
import { enqueueAll, type Enqueue } from './event-mapping.js';
import type { Fleet } from './fleet.js';
import type { StateStore } from './ports.js';
import type { ResyncRequest } from '../domain/resync-request-format.js';

export interface ResyncRequestReconcilerOptions {
  fleet: Fleet;
  store: Pick<StateStore, 'deleteResyncRequest'>;
  enqueue: Enqueue;
  logger: Logger;
}

export class ResyncRequestReconciler implements Reconciler {
  constructor(private readonly o: ResyncRequestReconcilerOptions) {}

  /** `id` is the request's name under /statemanager/resync/. */
  async reconcile(id: string): Promise<ReconcileResult | void> {
    const { fleet, store, enqueue, logger } = this.o;
    const entry = fleet.resyncRequest(id);
    if (!entry) return; // already applied and deleted, or never valid
    // A full resync starts from what etcd holds, not from what the caches kept (found by black-box
    // probing: after a restore no replica saw, `resync` recomputed the same wrong states).
    if (entry.value.kind === 'all') await fleet.caches.relistAll();
    const what = applyResyncRequest(fleet, enqueue, entry.value);
    logger.info('resync requested', { key: fleet.keys.resyncRequestKey(id), what });
    const res = await store.deleteResyncRequest(id, { modRevision: entry.modRevision, version: entry.version });
    // Rewritten since we read it: apply the new request too.
    return res.committed ? undefined : REQUEUE;
  }
}

/** Queue what a request asks for; a named resource goes ahead of a full resync's work. */
export function applyResyncRequest(fleet: Fleet, q: Enqueue, req: ResyncRequest): string {
  if (req.kind === 'all') {
    const c = enqueueAll(fleet, q, 'low');
    const after = c.packagesAfterModels > 0 ? ` (${c.packagesAfterModels} more after their models' first states)` : '';
    return `all: ${c.models} models, ${c.packages} packages${after}, ${c.requests} reconcile requests`;
  }
  if (req.kind === 'model') q.model(req.name);
  else {
    q.package(req.name);
    q.request(req.name);
  }
  return `${req.kind} ${req.name}`;
}
