// Reading a history entry as the controller writes it (README: /statemanager/history/), for
// every reader (the CLI, the state API): lenient about optional fields, strict about the rest.
import type { HistoryEntry } from './records.js';
import type { ResourceKind } from './states.js';

/** A history value as the controller writes it, or undefined when it is not one. */
export function parseHistoryEntry(value: string): HistoryEntry | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const e = doc as Partial<HistoryEntry>;
  if (typeof e.to !== 'string' || typeof e.at !== 'string' || typeof e.kind !== 'string' || typeof e.name !== 'string') {
    return undefined;
  }
  return {
    ...e,
    kind: e.kind as ResourceKind,
    name: e.name,
    from: typeof e.from === 'string' ? e.from : null,
    to: e.to,
    at: e.at,
    reason: typeof e.reason === 'string' ? e.reason : '',
    source: typeof e.source === 'string' ? e.source : '',
    drawn: e.drawn !== false,
  };
}
