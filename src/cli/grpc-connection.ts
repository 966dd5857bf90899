// The command's connection to a statemanager's gRPC API: the generated client on the channel the
// flags describe, closed with the command; every call with the bearer token and the command's
// deadline, cancelled when the command is interrupted, its failure turned into one readable line.
import * as grpc from '@grpc/grpc-js';
import type { StateManagerConnectionClient } from '../generated/statemanager/StateManagerConnection.js';
import { loadStateManagerProto } from '../grpc/proto.js';
import type { Context } from './context.js';
import { CliError, INTERRUPTED } from './errors.js';
import { channelSetup } from './grpc-channel.js';
import { grpcFailure } from './grpc-failure.js';
import type { ServerTarget } from './options.js';

type Callback<T> = (err: grpc.ServiceError | null, value?: T) => void;

export class GrpcConnection {
  /** "statemanager at HOST:PORT", for messages. */
  readonly where: string;
  readonly client: StateManagerConnectionClient;
  private readonly token: string | undefined;
  private readonly tls: boolean;

  constructor(
    private readonly ctx: Context,
    target: ServerTarget,
  ) {
    const setup = channelSetup(ctx.options, ctx.env, target.addr);
    this.where = `statemanager at ${target.addr}`;
    this.token = setup.token;
    this.tls = setup.tls;
    const proto = loadStateManagerProto();
    this.client = new proto.statemanager.StateManagerConnection(target.addr, setup.credentials, setup.options);
    ctx.onClose(() => this.client.close());
  }

  /** The call metadata: the bearer token, when there is one. */
  metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.token !== undefined) md.set('authorization', `Bearer ${this.token}`);
    return md;
  }

  /** One call with the command's deadline, cancelled when the command is interrupted. */
  unary<T>(invoke: (md: grpc.Metadata, options: grpc.CallOptions, cb: Callback<T>) => grpc.ClientUnaryCall): Promise<T> {
    const signal = this.ctx.io.signal;
    if (signal?.aborted) return Promise.reject(new CliError('interrupted', INTERRUPTED));
    return new Promise<T>((resolve, reject) => {
      let call: grpc.ClientUnaryCall | undefined = undefined;
      const onAbort = (): void => {
        call?.cancel();
        reject(new CliError('interrupted', INTERRUPTED));
      };
      call = invoke(this.metadata(), { deadline: Date.now() + this.ctx.timeoutMs }, (err, value) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(this.failure(err));
        else if (value === undefined) reject(new CliError(`${this.where} sent an empty answer`));
        else resolve(value);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A gRPC failure (or a stream's final status) as one line the operator can act on. */
  failure(err: unknown): CliError {
    return grpcFailure(err, {
      where: this.where,
      tokenGiven: this.token !== undefined,
      tls: this.tls,
      timeoutMs: this.ctx.timeoutMs,
      interrupted: this.ctx.io.signal?.aborted === true,
    });
  }
}
