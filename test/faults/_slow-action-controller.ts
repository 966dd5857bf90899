// A real gRPC ActionController whose answers for some scenarios come only after a long delay,
// past statemanager's call deadline: a slow peer must hold up only its own package.
import * as grpc from '@grpc/grpc-js';
import type { ProtoGrpcType } from '../../src/generated/actioncontroller.js';
import type { ReconcileRequest__Output } from '../../src/generated/actioncontroller/ReconcileRequest.js';
import type { ReconcileResponse } from '../../src/generated/actioncontroller/ReconcileResponse.js';
import { loadProto } from '../../src/grpc/proto.js';

export interface SlowActionController {
  readonly addr: string;
  /** Calls received per scenario name. */
  readonly calls: Map<string, number>;
  /** Scenario names answered at least once. */
  readonly answered: Set<string>;
  stop(): Promise<void>;
}

export async function startSlowActionController(o: { slowFor(name: string): boolean; delayMs: number }): Promise<SlowActionController> {
  const proto = loadProto<ProtoGrpcType>('actioncontroller.proto');
  const calls = new Map<string, number>();
  const answered = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  const server = new grpc.Server();
  server.addService(proto.actioncontroller.ActionControllerConnection.service, {
    Reconcile: (call: grpc.ServerUnaryCall<ReconcileRequest__Output, ReconcileResponse>, cb: grpc.sendUnaryData<ReconcileResponse>) => {
      const name = call.request.scenario_name;
      calls.set(name, (calls.get(name) ?? 0) + 1);
      const answer = (): void => {
        answered.add(name);
        cb(null, { status: 0, desc: 'accepted' });
      };
      if (!o.slowFor(name)) return answer();
      const timer = setTimeout(() => {
        timers.delete(timer);
        answer();
      }, o.delayMs);
      timers.add(timer);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    addr: `127.0.0.1:${port}`,
    calls,
    answered,
    async stop() {
      for (const t of timers) clearTimeout(t);
      server.forceShutdown();
    },
  };
}
