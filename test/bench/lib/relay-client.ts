// The harness side of the two-hop relay (test/bench/relay.ts): spawn it as a separate Node
// process, wait until its watch is created, ask for its counters, stop it.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { spawnTracked, stopChild } from './procs.js';

/** The relay writes RELAY_PREFIX + the container's key; the harness watches RELAY_PREFIX + '/'. */
export const RELAY_PREFIX = '/bench-relay';

/** How the relay writes (BENCH_RELAY_MODE, see test/bench/relay.ts). */
export type RelayMode = 'group' | 'txn' | 'puts';

export function relayMode(v: string | undefined): RelayMode {
  return v === 'txn' || v === 'puts' ? v : 'group';
}

export type RelayCommand = { cmd: 'stats' } | { cmd: 'exit' };

export interface RelayStats {
  /** Container put events the relay received. */
  events: number;
  /** Relayed puts etcd acknowledged. */
  puts: number;
  /** Failed writes (each sent again, up to 3 times) and watch errors. */
  errors: number;
  lastError?: string;
}

type Reply = { ok: true; result: unknown } | { ok: false; error: string };

export class RelayProcess {
  private child: ChildProcess | undefined;
  private waiting: ((r: Reply) => void) | undefined;

  constructor(
    private readonly root: string,
    private readonly endpoint: string,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    const child = spawnTracked(process.execPath, ['--import', 'tsx', join(this.root, 'test/bench/relay.ts')], {
      cwd: this.root,
      env: { ...process.env, BENCH_ETCD: this.endpoint },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    child.on('message', (m: Reply) => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.(m);
    });
    child.on('exit', (code, signal) => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.({ ok: false, error: `relay exited with ${signal ?? code}` });
    });
    const hello = await this.next(30_000);
    if (!hello.ok) throw new Error(hello.error);
  }

  private next(timeoutMs: number): Promise<Reply> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        resolve({ ok: false, error: `relay did not answer within ${timeoutMs} ms` });
      }, timeoutMs);
      this.waiting = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
    });
  }

  async stats(): Promise<RelayStats> {
    if (!this.child) throw new Error('relay not started');
    const reply = this.next(10_000);
    this.child.send({ cmd: 'stats' } satisfies RelayCommand);
    const r = await reply;
    if (!r.ok) throw new Error(r.error);
    return r.result as RelayStats;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    try {
      child.send({ cmd: 'exit' } satisfies RelayCommand);
    } catch {
      // channel closed
    }
    await stopChild(child, 'SIGTERM', 3000);
  }
}
