// A policy manager's client and an ActionController built from Pullpiri's 2026 protos
// (test/fixtures/pullpiri-2026-*.proto), not from the project's protos or generated code, the
// way the orchestrator's other components are built.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
// Options a typical client would pick: snake_case fields, enums as names, defaults filled in.
const OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true };

export interface OffloadingRequest {
  scenario_name?: string;
  package_name?: string;
  model_name?: string;
  source_node?: string;
  target_node?: string;
  policy_name?: string;
  reason?: string;
}

export interface OffloadingResponse {
  accepted: boolean;
  message: string;
  transition_id: string;
}

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;
interface RawPolicyClient extends grpc.Client {
  TriggerOffloading: Unary;
}
type PolicyCtor = new (addr: string, creds: grpc.ChannelCredentials) => RawPolicyClient;

let policyCtor: PolicyCtor | undefined;

/** The policy manager's side: TriggerOffloading, with metadata (a token) and a deadline. */
export class PolicyManagerClient {
  readonly raw: RawPolicyClient;

  constructor(address: string, private readonly metadata: () => grpc.Metadata = () => new grpc.Metadata()) {
    if (!policyCtor) {
      const def = protoLoader.loadSync(fixture('pullpiri-2026-statemanager.proto'), OPTIONS);
      policyCtor = (grpc.loadPackageDefinition(def) as unknown as { statemanager: { StateManagerConnection: PolicyCtor } }).statemanager.StateManagerConnection;
    }
    this.raw = new policyCtor(address, grpc.credentials.createInsecure());
  }

  trigger(req: OffloadingRequest, deadlineMs = 10_000): Promise<OffloadingResponse> {
    return new Promise((resolve, reject) => {
      this.raw.TriggerOffloading(req, this.metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res as OffloadingResponse)));
    });
  }

  close(): void {
    this.raw.close();
  }
}

export interface OffloadModelRequest {
  scenario_name: string;
  package_name: string;
  model_name: string;
  source_node: string;
  target_node: string;
  policy_name: string;
  reason: string;
}

/** How the fake ActionController answers one OffloadModel call. */
export type OffloadBehaviour =
  | { answer: { success: boolean; message: string; transition_id: string }; delayMs?: number }
  | { error: grpc.status; details: string };

export interface PullpiriActionController {
  readonly addr: string;
  readonly port: number;
  /** Every OffloadModel request received, in order. */
  readonly offloads: OffloadModelRequest[];
  /** Decides each answer; by default success with Pullpiri's message and id. */
  behaviour: (req: OffloadModelRequest) => OffloadBehaviour;
  stop(): Promise<void>;
}

/** Pullpiri's ActionController's answer to a successful offload (its receiver.rs). */
export function pullpiriSuccess(req: OffloadModelRequest): OffloadBehaviour {
  return {
    answer: {
      success: true,
      message: `Model '${req.model_name}' successfully migrated from '${req.source_node}' to '${req.target_node}'`,
      transition_id: `offload-${req.model_name}-1767225600000`,
    },
  };
}

/**
 * An ActionController on 127.0.0.1 from Pullpiri's actioncontroller.proto. `withoutOffload`
 * serves the service without OffloadModel (an ActionController from before 2026).
 */
export async function startPullpiriActionController(o: { port?: number; withoutOffload?: boolean; serverOptions?: grpc.ServerOptions } = {}): Promise<PullpiriActionController> {
  const def = protoLoader.loadSync(fixture('pullpiri-2026-actioncontroller.proto'), OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as { actioncontroller: { ActionControllerConnection: { service: grpc.ServiceDefinition } } };
  const server = new grpc.Server(o.serverOptions);
  const ac: PullpiriActionController = {
    addr: '',
    port: 0,
    offloads: [],
    behaviour: pullpiriSuccess,
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
  const handlers: grpc.UntypedServiceImplementation = {
    Reconcile: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: 0, desc: 'ok' }),
  };
  if (!o.withoutOffload) {
    handlers.OffloadModel = (call: grpc.ServerUnaryCall<OffloadModelRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      ac.offloads.push(call.request);
      const b = ac.behaviour(call.request);
      if ('error' in b) return cb({ code: b.error, details: b.details });
      setTimeout(() => cb(null, b.answer), b.delayMs ?? 0);
    };
  }
  server.addService(pkg.actioncontroller.ActionControllerConnection.service, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${o.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  Object.assign(ac, { addr: `127.0.0.1:${port}`, port });
  return ac;
}
