// The source a command reads: a statemanager over gRPC with --server (or STATEMANAGER_SERVER),
// etcd otherwise.
import type { Context } from './context.js';
import { GrpcSource } from './grpc-source.js';
import { EtcdSource } from './etcd-source.js';
import type { StateSource } from './source.js';

export function openSource(ctx: Context): StateSource {
  return ctx.server !== undefined ? new GrpcSource(ctx, ctx.server) : new EtcdSource(ctx);
}

/** What etcd alone has (definitions, containers, reconcile requests); undefined over gRPC. */
export function fleetOf(source: StateSource): EtcdSource | undefined {
  return source instanceof EtcdSource ? source : undefined;
}
