// The harness side of the two-hop relay (test/bench/relay.ts): spawn it as a separate Node
// process, wait until its watch is created, ask for its counters, stop it.
import { join } from 'node:path';
import { IpcChild } from './ipc-child.js';
import { spawnTracked } from './procs.js';

/** The relay writes RELAY_PREFIX + the container's key; the harness watches RELAY_PREFIX + '/'. */
export const RELAY_PREFIX = '/bench-relay';
/** The floor's history entries: outside RELAY_PREFIX + '/', as statemanager does not watch its history either. */
export const RELAY_HISTORY_PREFIX = '/bench-relay-history';
/** Most guarded state writes per relayed event: a model's and its package's, as statemanager folds them. */
export const MAX_RELAY_STATES = 2;

/** How the relay writes (BENCH_RELAY_MODE, see test/bench/relay.ts). */
export type RelayMode = 'group' | 'txn' | 'puts';

export function relayMode(v: string | undefined): RelayMode {
  return v === 'txn' || v === 'puts' ? v : 'group';
}

/**
 * The floor's options (test/bench/relay.ts): relay one put in `every` (≥ 1, a fraction spreads
 * them evenly), each as `states` guarded state writes with their history entries (0: one plain
 * put), and watch the relay's own state writes.
 */
export interface RelayFloor {
  every: number;
  states: number;
  echo: boolean;
}

export function relayFloor(env: NodeJS.ProcessEnv): RelayFloor {
  const every = Number(env.BENCH_RELAY_EVERY ?? 1);
  const states = Number(env.BENCH_RELAY_STATE ?? 0);
  return {
    every: Number.isFinite(every) && every >= 1 ? every : 1,
    states: Number.isInteger(states) && states >= 0 && states <= MAX_RELAY_STATES ? states : 0,
    echo: env.BENCH_RELAY_ECHO === '1',
  };
}

/** Whether the relay writes for its `n`th put event (from 0): one in `every`, a fraction spread evenly (4.5: 2 of every 9). */
export function relaysEvent(n: number, every: number): boolean {
  return Math.floor((n + 1) / every) !== Math.floor(n / every);
}

/** The environment that asks the relay for `floor`. */
export function relayFloorEnv(floor: RelayFloor): Record<string, string> {
  return { BENCH_RELAY_MODE: 'group', BENCH_RELAY_EVERY: String(floor.every), BENCH_RELAY_STATE: String(floor.states), BENCH_RELAY_ECHO: floor.echo ? '1' : '0' };
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
  /** Events of the relay's own writes seen on its echo watch (storm floor only). */
  echoes?: number;
}

export class RelayProcess {
  private readonly ipc: IpcChild<RelayCommand>;

  constructor(root: string, endpoint: string, env: Record<string, string> = {}) {
    this.ipc = new IpcChild('relay', () =>
      spawnTracked(process.execPath, ['--import', 'tsx', join(root, 'test/bench/relay.ts')], {
        cwd: root,
        env: { ...process.env, ...env, BENCH_ETCD: endpoint },
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
