// A client of contract section 5 built from the draft's messages (test/fixtures), not from the
// project's protos or generated code, the way another component of the orchestrator would.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO = fileURLToPath(new URL('../fixtures/pullpiri-draft-statemanager.proto', import.meta.url));

export interface DraftStateChange {
  resource_type: string;
  resource_name: string;
  current_state: string;
  target_state: string;
  transition_id: string;
  timestamp_ns: string;
  source: string;
}

export interface DraftHistory {
  from_state: string;
  to_state: string;
  timestamp_ns: string;
  transition_id: string;
  reason: string;
  source: string;
  duration_ms: string;
  success: boolean;
}

export interface DraftResourceState {
  resource_type: string;
  resource_name: string;
  current_state: string;
  desired_state: string;
  last_transition_time_ns: string;
  state_generation: string;
  asil_level: string;
  metadata: Record<string, string>;
  history: DraftHistory[];
  health_status: { healthy: boolean; status_message: string } | null;
}

export interface DraftEvent {
  event_type: string;
  state_change: DraftStateChange | null;
  event_timestamp_ns: string;
  event_id: string;
  severity: string;
  description: string;
  metadata: Record<string, string>;
}

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

interface RawClient extends grpc.Client {
  GetResourceState: Unary;
  GetResourceStateHistory: Unary;
  ListResourcesByState: Unary;
  SendStateChange: Unary;
  SubscribeToStateChanges(req: unknown, md: grpc.Metadata): grpc.ClientReadableStream<DraftEvent>;
}

let ctor: (new (addr: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => RawClient) | undefined;

function constructor(): new (addr: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => RawClient {
  if (!ctor) {
    // Options a typical client of the draft would pick: snake_case fields, enums as names, int64 as strings.
    const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { statemanager: { StateManagerConnection: typeof ctor } };
    ctor = pkg.statemanager.StateManagerConnection!;
  }
  return ctor;
}

export class DraftClient {
  readonly raw: RawClient;

  constructor(address: string, private readonly metadata: () => grpc.Metadata = () => new grpc.Metadata()) {
    this.raw = new (constructor())(address, grpc.credentials.createInsecure());
  }

  private call<T>(fn: Unary, req: unknown, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      fn.call(this.raw, req, this.metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res as T)));
    });
  }

  getState(resource_type: string, resource_name: string, timeoutMs?: number) {
    return this.call<{ resource_state: DraftResourceState | null; success: boolean; message: string }>(this.raw.GetResourceState, { resource_type, resource_name }, timeoutMs);
  }

  history(req: { resource_type: string; resource_name: string; start_time_ns?: string; end_time_ns?: string; limit?: number }, timeoutMs?: number) {
    return this.call<{ history: DraftHistory[]; success: boolean; message: string }>(this.raw.GetResourceStateHistory, req, timeoutMs);
  }

  list(req: { resource_type: string; state?: string; limit?: number; label_selector?: Record<string, string> }, timeoutMs?: number) {
    return this.call<{ resources: DraftResourceState[]; success: boolean; message: string; total_count: number }>(this.raw.ListResourcesByState, req, timeoutMs);
  }

  sendStateChange(req: { resource_type: string; resource_name: string; target_state: string; current_state?: string; source?: string }) {
    return this.call<{ error_code: string; error_details: string }>(this.raw.SendStateChange, req);
  }

  /** Collects every event; `end` settles with the stream's final status. */
  subscribe(resource_type: string, filter: Record<string, string> = {}): Subscription {
    const stream = this.raw.SubscribeToStateChanges({ resource_type, filter }, this.metadata());
    return new Subscription(stream);
  }

  close(): void {
    this.raw.close();
  }
}

export class Subscription {
  readonly events: DraftEvent[] = [];
  readonly end: Promise<grpc.StatusObject>;
  error: grpc.ServiceError | undefined;

  constructor(readonly stream: grpc.ClientReadableStream<DraftEvent>) {
    stream.on('data', (e: DraftEvent) => this.events.push(e));
    this.end = new Promise((resolve) => {
      stream.on('error', (err: grpc.ServiceError) => {
        this.error = err;
      });
      stream.on('status', (s: grpc.StatusObject) => resolve(s));
    });
  }

  cancel(): void {
    this.stream.cancel();
  }

  /** Revisions of the events received, in order. */
  revisions(): number[] {
    return this.events.map((e) => Number(e.metadata.revision));
  }
}
