// Operator-requested resyncs (`statemanager resync [KIND NAME]`): a key under
// /statemanager/resync/ that the leader turns into queued work, then deletes.
import type { Enqueue } from './event-mapping.js';
import { enqueueAll } from './event-mapping.js';
import type { Fleet } from './fleet.js';

export type ResyncRequest = { kind: 'all' } | { kind: 'model' | 'package'; name: string };

export function parseResyncRequest(value: string): ResyncRequest | undefined {
  let doc: unknown;
  try {
    doc = value.trim() === '' ? { kind: 'all' } : JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const { kind, name } = doc as { kind?: unknown; name?: unknown };
  if (kind === undefined || kind === 'all') return { kind: 'all' };
  if ((kind === 'model' || kind === 'package') && typeof name === 'string' && name !== '') return { kind, name };
  return undefined;
}

/** Queue what a request asks for; a named resource goes ahead of a full resync's work. */
export function applyResyncRequest(fleet: Fleet, q: Enqueue, req: ResyncRequest): string {
  if (req.kind === 'all') {
    const c = enqueueAll(fleet, q, 'low');
    return `all: ${c.models} models, ${c.packages} packages, ${c.requests} reconcile requests`;
  }
  if (req.kind === 'model') q.model(req.name);
  else {
    q.package(req.name);
    q.request(req.name);
  }
  return `${req.kind} ${req.name}`;
}
