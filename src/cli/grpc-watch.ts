// `watch --server`: the server's stream of state changes, followed across dropped streams — the
// server restarted, another replica behind a Service, a subscriber cut off for falling behind —
// by subscribing again from the last revision printed.
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../../controller/errors.js';
import type { ResourceKind } from '../../domain/states.js';
import type { ResourceType } from '../generated/statemanager/ResourceType.js';
import type { StateChangeEvent__Output } from '../generated/statemanager/StateChangeEvent.js';
import { kindOfResourceType, RESOURCE_TYPE_OF } from '../grpc/resource-types.js';
import type { Context } from './context.js';
import { nsToIso } from './grpc-answers.js';
import { RECONNECT_BACKOFF_MS } from './grpc-channel.js';
import type { GrpcConnection } from './grpc-connection.js';
import type { WatchHandlers, Watching } from './source.js';

/** A stream that lived this long counts as having worked: the next outage starts the backoff again. */
const HEALTHY_STREAM_MS = 10_000;

/**
 * SubscribeToStateChanges, subscribed again after every break from the last revision printed.
 * One etcd revision can hold several changes (a transaction), so a resume asks for everything
 * after the revision before it and skips the changes of that revision already printed.
 * `listedRevision` reads the revision the server's states were at: where a watch that has
 * printed nothing yet resumes from.
 */
export async function subscribeResuming(
  conn: GrpcConnection,
  ctx: Pick<Context, 'io' | 'now'>,
  filter: { kind?: ResourceKind; name?: string },
  listedRevision: (kind: ResourceKind | undefined) => Promise<number | undefined>,
  on: WatchHandlers,
): Promise<Watching> {
  const { stderr } = ctx.io;
  const resourceType: ResourceType = filter.kind !== undefined ? RESOURCE_TYPE_OF[filter.kind] : 'RESOURCE_TYPE_UNSPECIFIED';
  /** The newest revision printed (or listed) and the changes of it already printed. */
  let position: { revision: number; printed: Set<string> } | undefined;
  const listed = await listedRevision(filter.kind);
  if (listed !== undefined) position = { revision: listed, printed: new Set() };

  let stopped = false;
  let stream: grpc.ClientReadableStream<StateChangeEvent__Output> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let attempt = 0;
  let lost = false;

  const after = (): string => (position === undefined ? 'from now (no revision known yet)' : `after revision ${position.revision}`);

  const onEvent = (e: StateChangeEvent__Output): void => {
    const c = e.state_change;
    if (e.event_type !== 'EVENT_TYPE_STATE_CHANGE' || !c) return;
    const revision = Number(e.metadata.revision);
    if (Number.isSafeInteger(revision)) {
      if (position !== undefined && (revision < position.revision || (revision === position.revision && position.printed.has(e.event_id)))) return;
      if (position === undefined || revision > position.revision) position = { revision, printed: new Set() };
      position.printed.add(e.event_id);
    }
    const kind = kindOfResourceType(c.resource_type) ?? e.metadata.kind ?? String(c.resource_type);
    const view = {
      kind,
      name: c.resource_name,
      from: c.current_state === '' ? null : c.current_state,
      to: c.target_state === '' ? null : c.target_state,
      at: nsToIso(c.timestamp_ns) ?? new Date(ctx.now()).toISOString(),
    };
    on.change(view, { ...view, revision: Number.isSafeInteger(revision) ? revision : null, eventId: e.event_id });
  };

  const subscribe = (): void => {
    if (stopped) return;
    const since = position === undefined ? undefined : position.printed.size > 0 ? position.revision - 1 : position.revision;
    const req = {
      resource_type: resourceType,
      filter: { ...(filter.name !== undefined ? { name: filter.name } : {}), ...(since !== undefined ? { since_revision: String(since) } : {}) },
    };
    const s = conn.client.SubscribeToStateChanges(req, conn.metadata());
    const opened = Date.now();
    stream = s;
    s.on('data', (e: StateChangeEvent__Output) => {
      if (stream !== s || stopped) return;
      attempt = 0;
      onEvent(e);
    });
    // Every end comes as a status; 'error' only repeats it for non-OK ones.
    s.on('error', () => undefined);
    s.on('status', (st: grpc.StatusObject) => {
      if (stream !== s || stopped) return;
      stream = undefined;
      if (Date.now() - opened >= HEALTHY_STREAM_MS) attempt = 0;
      void ended(st);
    });
  };

  const ended = async (st: grpc.StatusObject): Promise<void> => {
    const summary = `${grpc.status[st.code] ?? st.code}: ${(st.details || 'stream ended').split('\n')[0]}`;
    switch (st.code) {
      case grpc.status.RESOURCE_EXHAUSTED:
        // Cut off for falling behind: the server keeps everything since, ask again at once.
        stderr.write(`statemanager: ${conn.where} cut the watch off for falling behind (${summary}); resubscribing ${after()}\n`);
        return retry(attempt > 0);
      case grpc.status.OUT_OF_RANGE:
        if (position === undefined || position.printed.size === 0) {
          // A listed revision that is compacted is one after which no change of the kind
          // came (the server's caches had seen none): follow from now.
          position = undefined;
          return subscribe();
        }
        {
          const lostAfter = position.revision;
          const cannot = `statemanager: cannot resume after revision ${lostAfter}: ${conn.where} no longer has it (compacted); changes since then may be missing`;
          try {
            const listed = await listedRevision(filter.kind);
            position = listed === undefined ? undefined : { revision: listed, printed: new Set() };
          } catch (err) {
            if (stopped) return;
            stderr.write(`${cannot}. Listing again failed (${errorMessage(err)}); following from now\n`);
            position = undefined;
            return retry(true);
          }
          if (stopped) return;
          // Said once listed, so that whatever is said next is a change after the new list.
          stderr.write(`${cannot}. Listed again; following ${after()}\n`);
        }
        return subscribe();
      case grpc.status.OK:
      case grpc.status.UNAVAILABLE:
      case grpc.status.CANCELLED:
      case grpc.status.UNKNOWN:
      case grpc.status.INTERNAL:
      case grpc.status.ABORTED:
      case grpc.status.DEADLINE_EXCEEDED:
        if (!lost) stderr.write(`statemanager: lost the watch on ${conn.where} (${summary}); reconnecting\n`);
        lost = true;
        return retry(true);
      default:
        stopped = true;
        on.fail(conn.failure(st));
    }
  };

  /** Subscribe again after a backoff, once the channel is connected. */
  const retry = (backoff: boolean): void => {
    if (stopped) return;
    const base = Math.min(RECONNECT_BACKOFF_MS.max, RECONNECT_BACKOFF_MS.first * 2 ** Math.min(attempt, 10));
    const delay = backoff ? base * (0.8 + Math.random() * 0.4) : 0;
    attempt++;
    timer = setTimeout(() => {
      if (stopped) return;
      conn.client.waitForReady(Date.now() + RECONNECT_BACKOFF_MS.max, (err) => {
        if (stopped) return;
        if (err) return retry(true);
        if (lost) stderr.write(`statemanager: reconnected to ${conn.where}; resuming ${after()}\n`);
        lost = false;
        subscribe();
      });
    }, delay);
  };

  subscribe();
  const what = filter.name !== undefined ? `${filter.kind}/${filter.name}` : filter.kind !== undefined ? `${filter.kind}s` : 'packages, models and scenarios';
  stderr.write(`watching state changes of ${what} on ${conn.where} ${after()} (Ctrl-C to stop)\n`);
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      stream?.cancel();
      stream = undefined;
    },
  };
}
