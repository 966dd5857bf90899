// A stand-in ActionController for the demo and tests: answers Reconcile and OffloadModel (as
// Pullpiri's does: success, a message, a transition id `offload-{model}-{ms}`) and reports each call.
import * as grpc from '@grpc/grpc-js';
import { pathToFileURL } from 'node:url';
import type { ProtoGrpcType } from '../generated/actioncontroller.js';
import type { ReconcileRequest__Output } from '../generated/actioncontroller/ReconcileRequest.js';
import type { ReconcileResponse } from '../generated/actioncontroller/ReconcileResponse.js';
import type { OffloadModelRequest__Output } from '../generated/actioncontroller/OffloadModelRequest.js';
import type { OffloadModelResponse } from '../generated/actioncontroller/OffloadModelResponse.js';
import { splitHostPort } from '../config/address.js';
import { loadProto } from '../grpc/proto.js';

export interface StandInOptions {
  host?: string;
  port?: number;
  onCall(request: ReconcileRequest__Output): void;
  /** Each OffloadModel call; it is answered with success. */
  onOffload?(request: OffloadModelRequest__Output): void;
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
    OffloadModel: (call: grpc.ServerUnaryCall<OffloadModelRequest__Output, OffloadModelResponse>, cb: grpc.sendUnaryData<OffloadModelResponse>) => {
      if (o.failing?.()) {
        cb({ code: grpc.status.UNAVAILABLE, details: 'stand-in ActionController failing on purpose' });
        return;
      }
      const r = call.request;
      o.onOffload?.(r);
      cb(null, {
        success: true,
        message: `Model '${r.model_name}' successfully migrated from '${r.source_node}' to '${r.target_node}'`,
        transition_id: `offload-${r.model_name}-${Date.now()}`,
      });
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
    onOffload: (r) =>
      process.stdout.write(`action-controller: OffloadModel model=${r.model_name} ${r.source_node} -> ${r.target_node} package=${r.package_name} policy=${r.policy_name} reason="${r.reason}"\n`),
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
