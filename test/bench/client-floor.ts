// The client floor of a cold start (issue 22, item 4): the I/O of statemanager's cold start, done
// by statemanager's own etcd code with none of the controller around it — what etcd3, grpc-js
// and our watch client cost by themselves. A separate Node process; from the benchmarked build's
// dist/ it loads src/etcd/client.ts (the Etcd3 client and the EtcdWatchClient, built from an
// etcd configuration as src/app.ts builds them), src/etcd/lister-watcher.ts and
// src/etcd/state-store.ts, and then, on {cmd: 'run', writes}:
// - lists, in pages (EtcdListerWatcher.listPages: 5,000 keys, each value read once), every prefix
//   statemanager's informers list (reconcilers/fleet.ts), all at once as the informers do; then
//   watches each from its listed revision + 1 (EtcdListerWatcher.watch). The inputs (containers,
//   nodes, package and scenario definitions) are the fleet's; the prefixes statemanager itself
//   writes (states, reconcile and resync requests) are under CLIENT_FLOOR_PREFIX, empty at the
//   start as they are at a cold start;
// - once every list is done (statemanager's workers start when every informer has synced),
//   writes `writes` states through a real EtcdStateStore — the guard on the state key, the state
//   put, the history put, group commit with its transactions in flight — from 512 writers at a
//   time (statemanager's 256 model and 256 package workers), two model states to one package state;
// - is done when every write has committed and its put event has come back on the state watches.
// Nothing is decoded beyond what those modules do: no caches, no rules, no JSON of the fleet.
// The harness (lib/client-floor.ts) reads this process's CPU from /proc when it answers.
// Run with plain node (Node strips the types): imports of this repository are types only.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as ClientModule from '../../src/etcd/client.js';
import type * as ListerWatcherModule from '../../src/etcd/lister-watcher.js';
import type * as StateStoreModule from '../../src/etcd/state-store.js';
import type * as KeysModule from '../../domain/keys.js';
import type { WatchHandle } from '../../controller/lister-watcher.js';
import type { StateTransition } from '../../reconcilers/ports.js';
import type { ClientFloorCommand, ClientFloorReport } from './lib/client-floor.js';

/** lib/client-floor.ts's CLIENT_FLOOR_PREFIX (a value import would need tsx). */
const SCRATCH = '/bench-client-floor';
/** statemanager's default controller.workers, for each of the model and package controllers. */
const WRITERS = 2 * 256;

const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function main(dist: string, endpoint: string): Promise<void> {
  const load = <T>(path: string): Promise<T> => import(pathToFileURL(join(dist, path)).href) as Promise<T>;
  const [{ createEtcdClient, createEtcdWatchClient }, { EtcdListerWatcher }, { EtcdStateStore }, { KeyLayout }] = await Promise.all([
    load<typeof ClientModule>('src/etcd/client.js'),
    load<typeof ListerWatcherModule>('src/etcd/lister-watcher.js'),
    load<typeof StateStoreModule>('src/etcd/state-store.js'),
    load<typeof KeysModule>('domain/keys.js'),
  ]);
  // statemanager's configuration with ETCD_ENDPOINTS set and everything else at its default.
  const etcdConfig = { endpoints: [endpoint], username: '', password: '', passwordFile: '', tls: { caFile: '', certFile: '', keyFile: '' }, requestTimeout: 5000, keepaliveTime: 10_000, keepaliveTimeout: 5_000 };
  const etcd = createEtcdClient(etcdConfig);
  const watchClient = createEtcdWatchClient(etcdConfig);
  const lw = new EtcdListerWatcher(etcd, watchClient);
  const handles: WatchHandle[] = [];
  let txns = 0;
  const txn = etcd.kv.txn.bind(etcd.kv);
  etcd.kv.txn = (...a: Parameters<typeof txn>) => {
    txns++;
    return txn(...a);
  };

  const run = async (writes: number, timeoutMs: number): Promise<ClientFloorReport> => {
    const cpu = { loaded: cpuNow(), listed: 0, done: 0 };
    const at = { loaded: performance.now(), listed: 0, done: 0 };
    const input = new KeyLayout('');
    const own = new KeyLayout(SCRATCH);
    // reconcilers/fleet.ts's informers, in its order.
    const prefixes = [
      own.resyncRequests,
      input.containers,
      input.nodes,
      input.packageDefs,
      input.scenarioDefs,
      own.statePrefix('model'),
      own.statePrefix('package'),
      own.statePrefix('scenario'),
      own.reconcileRequests,
    ];
    const echoPrefixes = new Set([own.statePrefix('model'), own.statePrefix('package')]);
    let listedKeys = 0;
    let listedChars = 0;
    let echoes = 0;
    let otherEvents = 0;
    let committed = 0;
    let notCommitted = 0;
    let finish: (() => void) | undefined;
    let fail: ((err: Error) => void) | undefined;
    const finished = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    const check = (): void => {
      if (committed + notCommitted === writes && echoes >= committed) finish?.();
    };
    const timer = setTimeout(() => fail?.(new Error(`not done within ${timeoutMs} ms: ${committed} of ${writes} writes committed, ${echoes} echoes`)), timeoutMs);

    await Promise.all(
      prefixes.map(async (prefix) => {
        const revision = await lw.listPages(prefix, (items) => {
          listedKeys += items.length;
          // Each value read once, as the informers read it to parse it (a listed value is a string only when read).
          for (const kv of items) listedChars += kv.value.length;
        });
        const echo = echoPrefixes.has(prefix);
        handles.push(
          lw.watch(prefix, revision + 1, {
            onEvents: (events) => {
              for (const ev of events) {
                if (echo && ev.type === 'put') echoes++;
                else otherEvents++;
              }
              if (echo) check();
            },
            onError: (err) => fail?.(err),
          }),
        );
      }),
    );
    cpu.listed = cpuNow();
    at.listed = performance.now();

    const store = new EtcdStateStore({ client: etcd, txn: watchClient, keys: own, historyLength: 50, requestTimeoutMs: etcdConfig.requestTimeout });
    const source = `controller/client-floor-${process.pid}`;
    let next = 0;
    const writer = async (): Promise<void> => {
      for (let i = next++; i < writes; i = next++) {
        const kind = i % 3 === 2 ? 'package' : 'model';
        const name = `${kind === 'model' ? 'm' : 'p'}${String(i).padStart(6, '0')}`;
        const t: StateTransition = {
          kind,
          name,
          to: 'Running',
          expected: undefined,
          history: { kind, name, from: null, to: 'Running', at: new Date().toISOString(), reason: 'containers: 2 running', source, drawn: true },
        };
        const r = await store.writeState(t);
        if (r.committed) committed++;
        else notCommitted++;
      }
    };
    try {
      await Promise.all([Promise.all(Array.from({ length: Math.min(WRITERS, writes) }, writer)).then(check), finished]);
    } finally {
      clearTimeout(timer);
    }
    cpu.done = cpuNow();
    at.done = performance.now();
    return { listedKeys, listedChars, prefixes: prefixes.length, writes: committed, notCommitted, echoes, otherEvents, txns, cpu, at };
  };

  const exit = (): void => {
    for (const h of handles) void h.close();
    watchClient.close();
    etcd.close();
    setTimeout(() => process.exit(0), 10);
  };
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', exit);
  process.on('message', (msg: ClientFloorCommand) => {
    if (msg.cmd === 'run') {
      run(msg.writes, msg.timeoutMs).then(
        (result) => process.send?.({ ok: true, result }),
        (err: unknown) => process.send?.({ ok: false, error: err instanceof Error ? err.message : String(err) }),
      );
    } else {
      process.send?.({ ok: true, result: 'bye' });
      exit();
    }
  });
  process.send?.({ ok: true, result: 'ready' });
}

const dist = process.env.BENCH_CLIENT_FLOOR_DIST;
const endpoint = process.env.BENCH_ETCD;
if (!dist || !endpoint || !process.send) {
  process.stderr.write('client-floor.ts is started by the benchmark harness (test/bench/lib/client-floor.ts)\n');
  process.exit(2);
} else {
  await main(dist, endpoint);
}
