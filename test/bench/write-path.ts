// What the state store's write path allocates per state written (issue 22, item 4): 75,000
// writes — two model states to one package state, the package guarded on a model it read, as at
// a cold start — from 512 writers through a real EtcdStateStore (history entries, own-put
// announcements, the caches told of each commit) whose transactions are encoded by the real
// encoder and answered after 20 ms, as etcd answers a cold start's; no etcd, so the figures are
// the store's alone and do not move with the machine's load. Allocation and collector figures
// are V8's own (`--trace-gc-nvp`: this script runs itself again in a child with it, and collects
// once more at the end so the last allocations are counted).
//
//   node test/bench/write-path.ts [DIST]      DIST: a build's dist/ (default: this checkout's)
//   WRITE_PATH_NODE_ARGS='--no-maglev --no-turbofan' node test/bench/write-path.ts   (more node flags for the child)
//
// The writers' own objects (the transitions, their history entries) are about 0.7 KB per write.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as StateStoreModule from '../../src/etcd/state-store.js';
import type * as EncoderModule from '../../src/etcd/txn-request-encoder.js';
import type * as KeysModule from '../../domain/keys.js';
import type { ReadGuard, StateTransition } from '../../reconcilers/ports.js';

const WRITES = 75_000;
const WRITERS = 512;
const ANSWER_MS = 20;

const dist = resolve(process.argv[2] ?? join(fileURLToPath(import.meta.url), '../../../dist'));

if (process.env.WRITE_PATH_CHILD !== '1') {
  const child = spawnSync(process.execPath, ['--trace-gc-nvp', '--expose-gc', ...(process.env.WRITE_PATH_NODE_ARGS ?? '').split(' ').filter(Boolean), fileURLToPath(import.meta.url), dist], { env: { ...process.env, WRITE_PATH_CHILD: '1' }, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (child.status !== 0) throw new Error(`write-path child failed: ${child.stderr}`);
  let allocated = 0;
  let promoted = 0;
  let pauseMs = 0;
  let scavenges = 0;
  for (const line of child.stdout.split('\n')) {
    if (!line.includes('gc=')) continue;
    for (const field of line.split(/\s+/)) {
      const [k, v] = field.split('=');
      if (k === 'allocated') allocated += Number(v);
      else if (k === 'promoted') promoted += Number(v);
      else if (k === 'pause') pauseMs += Number(v);
      else if (k === 'gc' && v === 's') scavenges++;
    }
  }
  const result = child.stdout.split('\n').find((l) => l.startsWith('{'));
  const { cpuMs, wallMs } = JSON.parse(result!) as { cpuMs: number; wallMs: number };
  console.log(`${dist}: ${WRITES} writes, ${WRITERS} writers`);
  console.log(`  allocated ${(allocated / 1e6).toFixed(1)} MB (${Math.round(allocated / WRITES)} B per write), promoted ${(promoted / 1e6).toFixed(1)} MB, ${scavenges} scavenges, ${pauseMs.toFixed(0)} ms of pauses`);
  console.log(`  CPU ${cpuMs.toFixed(0)} ms (${((cpuMs * 1000) / WRITES).toFixed(1)} µs per write), wall ${wallMs.toFixed(0)} ms`);
} else {
  const { EtcdStateStore } = (await import(pathToFileURL(join(dist, 'src/etcd/state-store.js')).href)) as typeof StateStoreModule;
  const { encodeTxnRequest } = (await import(pathToFileURL(join(dist, 'src/etcd/txn-request-encoder.js')).href)) as typeof EncoderModule;
  const { KeyLayout } = (await import(pathToFileURL(join(dist, 'domain/keys.js')).href)) as typeof KeysModule;
  let revision = 1000;
  const store = new EtcdStateStore({
    client: undefined as never,
    txn: {
      txn(req) {
        encodeTxnRequest(req);
        const r = ++revision;
        return new Promise((answer) => setTimeout(() => answer({ header: { revision: r }, succeeded: true, responses: [] }), ANSWER_MS));
      },
    },
    keys: new KeyLayout(''),
    historyLength: 50,
    requestTimeoutMs: 5000,
    onCommit() {},
    ownPuts: { sending() {}, answered() {} },
  });
  let next = 0;
  const writer = async (): Promise<void> => {
    while (next < WRITES) {
      const i = next++;
      const kind = i % 3 === 2 ? 'package' : 'model';
      const name = `${kind}-${i}`;
      const t: StateTransition = { kind, name, to: 'Running', expected: undefined, history: { kind, name, from: null, to: 'Running', at: new Date(1e12 + i).toISOString(), reason: 'containers', source: 'statemanager', drawn: true } };
      const read: ReadGuard[] = kind === 'package' ? [{ kind: 'model', name: `model-${i - 1}`, expected: { modRevision: 5, version: 1 } }] : [];
      if (!(await store.writeStates([t], read)).committed) throw new Error('a write did not commit');
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: WRITERS }, writer));
  const cpu = process.cpuUsage(cpu0);
  // A last collection, so what was allocated since the one before is counted too.
  (globalThis as { gc?: () => void }).gc?.();
  console.log(JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - t0 }));
}
