// etcd reads and bulk writes for the harness (independent of src/etcd: the benchmark must not
// share code paths with what it measures).
import { Etcd3, type IKeyValue } from 'etcd3';
import { type Fleet } from './fleet.js';

export function client(endpoint: string): Etcd3 {
  return new Etcd3({
    hosts: endpoint,
    grpcOptions: { 'grpc.max_receive_message_length': 128 * 1024 * 1024 },
  });
}

function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export interface Snapshot {
  revision: number;
  kvs: Map<string, { value: string; modRevision: number; version: number }>;
}

/** Every key under `prefix` at one revision (paginated). */
export async function readPrefix(c: Etcd3, prefix: string, atRevision = 0): Promise<Snapshot> {
  const end = prefixEnd(prefix);
  let from = Buffer.from(prefix);
  let revision = atRevision;
  const kvs: Snapshot['kvs'] = new Map();
  for (let page = 0; page < 10_000; page++) {
    const res = await c.kv.range({ key: from, range_end: end, limit: 10_000, ...(revision > 0 ? { revision } : {}) });
    if (revision === 0) revision = Number(res.header.revision);
    for (const kv of res.kvs as IKeyValue[]) {
      kvs.set(kv.key.toString(), { value: kv.value.toString(), modRevision: Number(kv.mod_revision), version: Number(kv.version) });
    }
    if (!res.more || res.kvs.length === 0) break;
    from = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
  }
  return { revision, kvs };
}

export async function currentRevision(c: Etcd3): Promise<number> {
  const res = await c.kv.range({ key: Buffer.from('\0'), limit: 1, count_only: true });
  return Number(res.header.revision);
}

/** Put many keys in transactions of up to 100 puts, `inFlight` at a time. Returns the last revision. */
export async function bulkPut(c: Etcd3, entries: Iterable<[string, string]>, inFlight = 8): Promise<number> {
  const batches: [string, string][][] = [];
  let cur: [string, string][] = [];
  for (const e of entries) {
    cur.push(e);
    if (cur.length === 100) {
      batches.push(cur);
      cur = [];
    }
  }
  if (cur.length > 0) batches.push(cur);
  let next = 0;
  let last = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const batch = batches[next++]!;
      const res = await c.kv.txn({
        compare: [],
        success: batch.map(([k, v]) => ({ request_put: { key: Buffer.from(k), value: Buffer.from(v) } })),
        failure: [],
      });
      last = Math.max(last, Number(res.header.revision));
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return last;
}

/** Write the fleet's inputs: nodes, definitions, containers in their initial statuses. */
export async function loadFleet(c: Etcd3, fleet: Fleet, statuses?: Uint8Array): Promise<number> {
  const s = statuses ?? fleet.initial;
  function* entries(): Generator<[string, string]> {
    for (let n = 0; n < fleet.shape.nodes; n++) yield [fleet.nodeStatusKey(n), fleet.nodeReady(n) ? 'Ready' : 'NotReady'];
    for (let p = 0; p < fleet.packages; p++) {
      yield [fleet.packageKey(p), fleet.packageValue(p)];
      yield [fleet.scenarioKey(p), fleet.scenarioValue(p)];
    }
    for (let m = 0; m < fleet.models; m++) yield [fleet.modelDefKey(m), fleet.modelDefValue(m)];
    for (let i = 0; i < fleet.containers; i++) yield [fleet.containerKey(i), fleet.containerValue(i, s[i]!)];
  }
  return bulkPut(c, entries());
}

export async function etcdVersion(endpoint: string): Promise<string> {
  try {
    const res = await fetch(`${endpoint}/version`);
    const v = (await res.json()) as { etcdserver?: string };
    return v.etcdserver ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
