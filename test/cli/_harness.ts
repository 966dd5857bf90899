// Running the CLI in-process against a test etcd, and a scripted tree of definitions,
// containers, states, history and reconcile requests written as the controller would.
import type { Etcd3 } from 'etcd3';
import { KeyLayout } from '../../domain/keys.js';
import type { HistoryEntry, ReconcileRequestRecord } from '../../reconcilers/ports.js';
import type { ResourceKind } from '../../domain/states.js';
import { run } from '../../src/cli/main.js';
import { FleetWriter } from '../helpers/fleet-writer.js';

export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  now?: number;
  tty?: boolean;
  signal?: AbortSignal;
  /** Called with everything written to stderr so far, on every write. */
  onStderr?: (text: string) => void;
}

export async function cli(argv: string[], o: RunOptions = {}): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const started = Date.now();
  const code = await run(argv, {
    stdout: { write: (s: string) => (stdout += s), isTTY: o.tty ?? false },
    stderr: {
      write: (s: string) => {
        stderr += s;
        o.onStderr?.(stderr);
      },
    },
    env: o.env ?? {},
    ...(o.now !== undefined ? { now: () => o.now! } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  return { code, stdout, stderr, ms: Date.now() - started };
}

/** The fixed "now" of the scripted tree: relative times are exact. */
export const NOW = Date.parse('2025-03-01T12:00:00.000Z');
export const ago = (ms: number): string => new Date(NOW - ms).toISOString();

export class Script {
  readonly w: FleetWriter;
  readonly keys: KeyLayout;
  private seqs = new Map<string, number>();

  constructor(
    readonly client: Etcd3,
    readonly prefix: string,
  ) {
    this.w = new FleetWriter(client, prefix);
    this.keys = this.w.keys;
  }

  async state(kind: ResourceKind, name: string, value: string): Promise<void> {
    await this.client.put(this.keys.stateKey(kind, name)).value(value);
  }

  /** Append a history entry as the controller's state store does (sequence = state key version). */
  async history(kind: ResourceKind, name: string, from: string | null, to: string, at: string, reason: string, extra: Partial<HistoryEntry> = {}): Promise<HistoryEntry> {
    const id = `${kind}/${name}`;
    const seq = (this.seqs.get(id) ?? 0) + 1;
    this.seqs.set(id, seq);
    const entry: HistoryEntry = { kind, name, from, to, at, reason, source: 'controller', drawn: true, ...extra };
    await this.client.put(this.keys.historyKey(kind, name, seq)).value(JSON.stringify(entry));
    return entry;
  }

  async request(record: ReconcileRequestRecord): Promise<void> {
    await this.client.put(this.keys.reconcileRequestKey(record.package)).value(JSON.stringify(record));
  }
}

/**
 * shop (Degraded): web (Running: n1/c1 running, n2/c2 running on a NotReady node → unknown... but
 * web is stored Running as before the node failed), db (Dead: n1/c3 dead), cache (no state yet);
 * scenario shop-scn → shop (Waiting); a delivered reconcile request for shop.
 * idle: no models, Idle. orphan: a package state without definition.
 */
export async function scriptTree(s: Script): Promise<void> {
  const { w } = s;
  await w.packageDef('shop', ['web', 'db', 'cache']);
  await w.packageDef('idle', []);
  await w.scenarioDef('shop-scn', 'shop');
  await w.scenarioDef('zz-later', 'shop');
  await w.container('n1', 'c1', 'web', 'running');
  await w.container('n2', 'c2', 'web', 'running');
  await w.container('n1', 'c3', 'db', 'dead');
  await w.nodeStatus('n2', 'NotReady');
  await s.client.put(s.keys.containerKey('n1', 'stray')).value('{"id":"stray","state":{"Status":"running"}}');

  await s.state('package', 'shop', 'Degraded');
  await s.state('package', 'idle', 'PACKAGE_STATE_IDLE');
  await s.state('package', 'orphan', 'Exited');
  await s.state('model', 'web', 'Running');
  await s.state('model', 'db', 'Dead');
  await s.state('scenario', 'shop-scn', 'Waiting');

  await s.history('package', 'shop', null, 'Idle', ago(3_600_000), 'new package, no model running');
  await s.history('package', 'shop', 'Idle', 'Running', ago(600_000), 'models: 3 Running');
  await s.history('package', 'shop', 'Running', 'Degraded', ago(120_000), 'models: 2 Running, 1 Dead');
  await s.history('package', 'idle', null, 'Idle', ago(7_200_000), 'no models');
  await s.history('model', 'web', null, 'Created', ago(3_600_000), 'containers: none');
  await s.history('model', 'web', 'Created', 'Running', ago(600_000), 'containers: 2 running');
  await s.history('model', 'db', null, 'Running', ago(600_000), 'containers: 1 running');
  await s.history('model', 'db', 'Running', 'Dead', ago(120_000), 'containers: 1 dead', { source: 'replica-a' });
  await s.history('scenario', 'shop-scn', null, 'Idle', ago(86_400_000 * 3), 'requested', { source: 'api-server' });
  await s.history('scenario', 'shop-scn', 'Idle', 'Waiting', ago(45_000), 'requested', { source: 'api-server' });
  await s.request({
    package: 'shop',
    state: 'Error',
    requestedAt: ago(300_000),
    deliveries: 2,
    lastDeliveredAt: ago(30_000),
    scenario: 'shop-scn',
  });
}
