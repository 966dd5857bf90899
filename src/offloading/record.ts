// One TriggerOffloading request as statemanager keeps it under
// /statemanager/offloading/{model}/{id}, for operators (`statemanager describe model`): what was
// asked, by whom (the authenticated identity), and what the ActionController answered.
import { randomBytes } from 'node:crypto';
import { isRecord } from '../../domain/plain-yaml.js';

/**
 * What became of a request that passed the checks and was sent on (or tried to be): `timeout` and
 * `lost` (the connection went during the call) leave the outcome unknown.
 */
export type ForwardedOutcome = 'accepted' | 'rejected' | 'unavailable' | 'timeout' | 'lost';

export interface OffloadingRecord {
  /** ISO-8601 time the request was received. */
  at: string;
  model: string;
  package: string;
  scenario: string;
  source: string;
  target: string;
  policy: string;
  reason: string;
  /** The authenticated identity of the caller whose request reached the ActionController. */
  identity: string;
  /** Identical requests answered by the same ActionController call (1: only this one). */
  callers: number;
  outcome: ForwardedOutcome;
  /** The ActionController's message, or why it was not reached (cut to RECORD_MESSAGE_BYTES). */
  message: string;
  transitionId: string;
  durationMs: number;
}

/** The ActionController's message is stored up to this many bytes. */
export const RECORD_MESSAGE_BYTES = 1024;

const OUTCOMES: readonly string[] = ['accepted', 'rejected', 'unavailable', 'timeout', 'lost'];

/**
 * A record id: the time in milliseconds, zero-padded so ids sort by time, and a random suffix so
 * two replicas recording in the same millisecond do not collide.
 */
export function recordId(atMs: number, random: () => string = () => randomBytes(4).toString('hex')): string {
  return `${String(atMs).padStart(15, '0')}-${random()}`;
}

/** A stored record, or undefined when the value is not one (another writer's, or damaged). */
export function parseOffloadingRecord(value: string): OffloadingRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (!isRecord(v)) return undefined;
  const strings = ['at', 'model', 'package', 'scenario', 'source', 'target', 'policy', 'reason', 'identity', 'message', 'transitionId'] as const;
  for (const k of strings) if (typeof v[k] !== 'string') return undefined;
  if (typeof v.outcome !== 'string' || !OUTCOMES.includes(v.outcome)) return undefined;
  if (typeof v.callers !== 'number' || typeof v.durationMs !== 'number') return undefined;
  return v as unknown as OffloadingRecord;
}

/** `s` cut to at most `bytes` bytes of UTF-8, on a character boundary. */
export function cutToBytes(s: string, bytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= bytes) return s;
  let out = Buffer.from(s, 'utf8').subarray(0, bytes).toString('utf8');
  // A cut inside a character decodes to U+FFFD at the end: drop it.
  while (out.endsWith('\uFFFD') && Buffer.byteLength(out, 'utf8') > 0) out = out.slice(0, -1);
  return out;
}
