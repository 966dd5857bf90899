// A stand-in ActionController for the demo and tests: answers Reconcile and reports each call.
import * as grpc from '@grpc/grpc-js';
import { pathToFileURL } from 'node:url';
import type { ProtoGrpcType } from '../generated/actioncontroller.js';
import type { ReconcileRequest__Output } from '../generated/actioncontroller/ReconcileRequest.js';
import type { ReconcileResponse } from '../generated/actioncontroller/ReconcileResponse.js';
import { splitHostPort } from '../address.js';
import { loadProto } from '../grpc/proto.js';

export interface StandInOptions {
  host?: string;
  port?: number;
  onCall(request: ReconcileRequest__Output): void;
  /** When it returns true the call fails with UNAVAILABLE. */
  failing?(): boolean;
}

export async function startStandInActionController(o: StandInOptions): Promise<{ server: grpc.Server; port: number }> {
  const proto = loadProto<ProtoGrpcType>('actioncontroller.proto');
  const server = new grpc.Server();
  server.addService(proto.actioncontroller.ActionControllerConnection.service, {
    Reconcile: (call: grpc.ServerUnaryCall<ReconcileRequest__Output, ReconcileResponse>, cb: grpc.sendUnaryData<ReconcileResponse>) => {
      if (o.failing?.()) {
        cb({ code: grpc.status.UNAVAILABLE, details: 'stand-in ActionController failing on purpose' });
        return;
      }
      o.onCall(call.request);
      cb(null, { status: 0, desc: 'accepted' });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${o.host ?? '127.0.0.1'}:${o.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { server, port };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { host, port } = splitHostPort(process.env.ACTION_CONTROLLER_ADDR ?? '127.0.0.1:47001');
  startStandInActionController({
    host,
    port,
    onCall: (r) => process.stdout.write(`action-controller: Reconcile scenario=${r.scenario_name} current=${r.current} desired=${r.desired}\n`),
  }).then(
    ({ server }) => {
      const stop = (): void => server.forceShutdown();
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    },
    (err: unknown) => {
      process.stderr.write(`action-controller: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
