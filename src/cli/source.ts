// Where the commands read states from: etcd directly (EtcdSource in etcd-source.ts, with everything the
// controller keeps) or a statemanager's gRPC API (GrpcSource in grpc-source.ts, contract section
// 5: states, history, health and the change stream, but no definitions or containers). The
// commands print what either gives through the same formatting.
import type { HistoryEntry } from '../../reconcilers/ports.js';
import type { ResourceKind } from '../../domain/states.js';

/**
 * A recorded transition. Over gRPC the API does not say whether the edge is drawn, nor who was
 * authenticated, so `drawn` and `identity` are absent there.
 */
export type Transition = Omit<HistoryEntry, 'drawn'> & { drawn?: boolean };

export interface ResourceSummary {
  name: string;
  /** The stored state (canonical spelling, or the raw value); null when there is none. */
  state: string | null;
  /** The time of the last recorded transition. */
  since: string | null;
  /** gRPC only: the state key's version (one more with every change). */
  generation?: number;
}

export interface ResourceDetail extends ResourceSummary {
  /** Every recorded transition, oldest first. */
  history: Transition[];
  /** gRPC only: the etcd revision the answer was read at. */
  revision?: number;
  /** gRPC only: the API's health status of the resource. */
  health?: { healthy: boolean; message: string };
  /** gRPC only: why the server could not read the history (etcd unreachable): `history` is then empty, not "none recorded". */
  historyUnavailable?: string;
}

/** One change as `watch` prints it; `data` is what JSON/YAML output shows. */
export interface WatchView {
  at: string;
  kind: string;
  name: string;
  from: string | null;
  /** null: the state was deleted. */
  to: string | null;
  reason?: string;
}

export interface WatchHandlers {
  change(view: WatchView, data: object): void;
  /** The watch cannot go on (a failure already translated to a CliError). */
  fail(err: unknown): void;
}

export interface Watching {
  /** Stop following (idempotent). */
  stop(): Promise<void>;
}

export interface StateSource {
  /** "etcd at URL" or "statemanager at HOST:PORT", for messages. */
  readonly where: string;
  /** Every resource of the kind, sorted by name. */
  list(kind: ResourceKind): Promise<ResourceSummary[]>;
  /** One resource, or undefined when it does not exist. */
  get(kind: ResourceKind, name: string): Promise<ResourceSummary | undefined>;
  /** One resource with its whole recorded history, or undefined when it does not exist. */
  detail(kind: ResourceKind, name: string): Promise<ResourceDetail | undefined>;
  /** The recorded transitions, oldest first; undefined when the resource does not exist. */
  history(kind: ResourceKind, name: string): Promise<Transition[] | undefined>;
  /**
   * Follow changes from now on (of one kind, or one resource); resolves once following, after
   * writing on stderr what it follows.
   */
  watch(filter: { kind?: ResourceKind; name?: string }, on: WatchHandlers): Promise<Watching>;
}
