// The harness side of the two-hop relay (test/bench/relay.ts): spawn it as a separate Node
// process, wait until its watch is created, ask for its counters, stop it.
import { join } from 'node:path';
import { IpcChild } from './ipc-child.js';
import { spawnTracked } from './procs.js';

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

export class RelayProcess {
  private readonly ipc: IpcChild<RelayCommand>;

  constructor(root: string, endpoint: string) {
    this.ipc = new IpcChild('relay', () =>
      spawnTracked(process.execPath, ['--import', 'tsx', join(root, 'test/bench/relay.ts')], {
        cwd: root,
        env: { ...process.env, BENCH_ETCD: endpoint },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
  }

  get pid(): number | undefined {
    return this.ipc.pid;
  }

  start(): Promise<void> {
    return this.ipc.start();
  }

  stats(): Promise<RelayStats> {
    return this.ipc.call<RelayStats>({ cmd: 'stats' }, 10_000);
  }

  stop(): Promise<void> {
    return this.ipc.stop();
  }
}
