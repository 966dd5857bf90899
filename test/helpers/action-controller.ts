// A real gRPC ActionController on 127.0.0.1 that records the Reconcile calls it receives.
import * as grpc from '@grpc/grpc-js';
import type { ProtoGrpcType } from '../../src/generated/actioncontroller.js';
import type { ReconcileRequest__Output } from '../../src/generated/actioncontroller/ReconcileRequest.js';
import { loadProto } from '../../src/protos.js';

export interface FakeActionController {
  readonly addr: string;
  readonly calls: ReconcileRequest__Output[];
  /** Make calls fail with UNAVAILABLE (true) or succeed (false). */
  failing: boolean;
  stop(): Promise<void>;
  /** Listen again on the same port after stop(). */
  restart(): Promise<void>;
}

export async function startActionController(port = 0): Promise<FakeActionController> {
  const proto = loadProto<ProtoGrpcType>('actioncontroller.proto');
  const calls: ReconcileRequest__Output[] = [];
  let server: grpc.Server | undefined;
  const state = { failing: false };

  const listen = async (p: number): Promise<number> => {
    const s = new grpc.Server();
    s.addService(proto.actioncontroller.ActionControllerConnection.service, {
      Reconcile: (call: grpc.ServerUnaryCall<ReconcileRequest__Output, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (state.failing) {
          cb({ code: grpc.status.UNAVAILABLE, details: 'test: failing on purpose' });
          return;
        }
        calls.push(call.request);
        cb(null, { status: 0, desc: 'ok' });
      },
    });
    const bound = await new Promise<number>((resolve, reject) =>
      s.bindAsync(`127.0.0.1:${p}`, grpc.ServerCredentials.createInsecure(), (err, got) => (err ? reject(err) : resolve(got))),
    );
    server = s;
    return bound;
  };

  const bound = await listen(port);
  return {
    addr: `127.0.0.1:${bound}`,
    calls,
    get failing() {
      return state.failing;
    },
    set failing(v: boolean) {
      state.failing = v;
    },
    async stop() {
      const s = server;
      server = undefined;
      if (s) await new Promise<void>((resolve) => s.tryShutdown(() => resolve()));
    },
    async restart() {
      await listen(bound);
    },
  };
}
