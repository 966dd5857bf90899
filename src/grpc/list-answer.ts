// ListResourcesByState's answer over many resources (limit 0 over a fleet: up to 4 MiB), built a
// slice at a time: each slice converted, measured against the byte budget and encoded, with the
// event loop free between slices; the slices' encodings and the head's are one message once
// joined (protobuf: concatenated encodings of a message merge, repeated fields appended in order,
// the last scalar winning — the head goes last). Identical lists at the same revision share one
// answer. Before, each list converted and encoded everything at once: 0.5 s of one core for
// 38,000 models, and 20 callers listing together held every other call up to 6 s (black-box
// probing).
import type { ListResourcesByStateResponse } from '../generated/statemanager/ListResourcesByStateResponse.js';
import type { ResourceState } from '../generated/statemanager/ResourceState.js';
import type { PreEncoded } from './proto.js';

/** Resources converted and encoded between two returns to the event loop. */
export const LIST_SLICE = 2048;

export interface ListAnswerOptions<V> {
  /** Bytes of resources in one answer (listedResourceBytes summed). */
  maxBytes: number;
  toState(view: V): ResourceState;
  bytesOf(state: ResourceState): number;
  /** The method's response encoder; without it the answer is the message itself (still sliced). */
  encode?: (response: ListResourcesByStateResponse) => PreEncoded;
}

export interface ListHead {
  success: true;
  total_count: number;
  message: string;
}

/**
 * The answer for `views` (in order): as many as fit `maxBytes`; `head(shown)` gives the rest of
 * the answer once it is known how many were shown.
 */
export async function buildListAnswer<V>(views: readonly V[], o: ListAnswerOptions<V>, head: (shown: number) => ListHead): Promise<ListResourcesByStateResponse | PreEncoded> {
  const parts: Buffer[] = [];
  const kept: ResourceState[] = [];
  let slice: ResourceState[] = [];
  let bytes = 0;
  let shown = 0;
  const flush = (): void => {
    if (slice.length === 0) return;
    if (o.encode) parts.push(o.encode({ resources: slice }));
    else for (const s of slice) kept.push(s);
    slice = [];
  };
  for (const view of views) {
    const state = o.toState(view);
    bytes += o.bytesOf(state);
    if (bytes > o.maxBytes) break;
    slice.push(state);
    shown++;
    if (slice.length === LIST_SLICE) {
      flush();
      await yieldToLoop();
    }
  }
  flush();
  const h = head(shown);
  if (!o.encode) return { ...h, resources: kept };
  parts.push(o.encode({ ...h, resources: [] }));
  return Buffer.concat(parts) as PreEncoded;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Answers in flight or recent, by key; the oldest goes past `max` (each may be 4 MiB). */
export class SharedAnswers<T> {
  private readonly answers = new Map<string, Promise<T>>();

  constructor(private readonly max = 4) {}

  get(key: string, build: () => Promise<T>): Promise<T> {
    let p = this.answers.get(key);
    if (p === undefined) {
      p = build();
      this.answers.set(key, p);
      if (this.answers.size > this.max) this.answers.delete(this.answers.keys().next().value!);
      // A failed build is not kept.
      p.catch(() => {
        if (this.answers.get(key) === p) this.answers.delete(key);
      });
    }
    return p;
  }
}
