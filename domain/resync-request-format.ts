// The format of an operator's resync request (`statemanager resync [KIND NAME]`), the value of a
// key under /statemanager/resync/. A leaf module: the fleet decodes it, the reconciler applies it.

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
