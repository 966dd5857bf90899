// One command's surroundings, put together from the global options: where it reads (a
// statemanager over gRPC, or etcd with the controller's configuration), its deadlines, its output,
// and, for etcd, the connection and the snapshot its reads share; all of it closed when it ends.
import type { Command } from 'commander';
import type { KeyLayout } from '../../domain/keys.js';
import type { Config } from '../config/config.js';
import { timeouts } from './deadline.js';
import { EtcdConnection } from './etcd-connection.js';
import type { CliIO } from './io.js';
import { target, type EtcdTarget, type GlobalOptions, type ServerTarget } from './options.js';
import { Output } from './output.js';
import { Snapshot } from './snapshot.js';

export class Context {
  readonly env: NodeJS.ProcessEnv;
  readonly out: Output;
  /** Set when the command reads a statemanager over gRPC rather than etcd. */
  readonly server: ServerTarget | undefined;
  private readonly etcdTarget: EtcdTarget | undefined;
  /** Deadline of each etcd or gRPC call. */
  readonly timeoutMs: number;
  /** For commands that wait (watch, resync --wait): how long, when --timeout was given. */
  readonly boundMs: number | undefined;
  private connection: EtcdConnection | undefined;
  private snap: Snapshot | undefined;
  private readonly closers: (() => void)[] = [];

  constructor(
    readonly io: CliIO,
    readonly options: GlobalOptions,
    timeoutSource: string | undefined,
    /** The command waits, and --timeout bounds the wait rather than each call. */
    timeoutIsBound = false,
  ) {
    this.env = io.env ?? process.env;
    const t = timeouts(options.timeout, timeoutSource === 'cli', timeoutIsBound);
    this.timeoutMs = t.callMs;
    this.boundMs = t.boundMs;
    const where = target(options, this.env);
    this.server = where.server;
    this.etcdTarget = where.etcd;
    this.out = new Output(options.output, io.stdout, this.env);
  }

  static of(cmd: Command, io: CliIO, timeoutIsBound = false): Context {
    return new Context(io, cmd.optsWithGlobals<GlobalOptions>(), cmd.getOptionValueSourceWithGlobals('timeout'), timeoutIsBound);
  }

  /** The controller's configuration (etcd mode only). */
  get config(): Config {
    return this.etcdOnly().config;
  }

  get keys(): KeyLayout {
    return this.etcdOnly().keys;
  }

  /** The connection to etcd, opened on first use (etcd mode only). */
  get etcd(): EtcdConnection {
    this.connection ??= new EtcdConnection(this.config.etcd, this.timeoutMs, this.io.signal);
    return this.connection;
  }

  /** The reads of this command, all at one revision (etcd mode only). */
  get snapshot(): Snapshot {
    this.snap ??= new Snapshot(this.etcd);
    return this.snap;
  }

  /** Runs when the command ends (a gRPC channel to close). */
  onClose(fn: () => void): void {
    this.closers.push(fn);
  }

  now(): number {
    return (this.io.now ?? Date.now)();
  }

  close(): void {
    this.connection?.close();
    this.connection = this.snap = undefined;
    for (const fn of this.closers.splice(0)) fn();
  }

  private etcdOnly(): EtcdTarget {
    if (!this.etcdTarget) throw new Error('no etcd configuration: the command reads a statemanager over gRPC');
    return this.etcdTarget;
  }
}
