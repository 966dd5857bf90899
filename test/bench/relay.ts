// The two-hop relay floor (issue 22): the least any controller can do between a container put
// and its own write. A separate Node process that watches /container/ and, for every put event,
// immediately puts one key: RELAY_PREFIX + the container's key, whose value is the container
// event's mod revision (so the harness matches a relayed write to its put exactly). Nothing is
// decoded beyond the event's key and revision: no JSON, no caches, no rules, no waiting — one
// watch delivery, one write, one more watch delivery, as statemanager's chain has at the least.
// How the writes go out (BENCH_RELAY_MODE): 'group' (the default) commits them as statemanager's
// state store does — at once while a transaction slot is free, the rest together in the next
// transaction — so the floor carries the same number of etcd transactions as a controller that
// batches; 'txn' sends one transaction per watch response at once, unbounded; 'puts' one put per
// event. At 3,000 puts/s both of the latter load etcd with about as many writes as the
// generator's own and measured slower than statemanager (docs/performance.md).
//
// It uses the etcd3 client (grpc-js + protobufjs), as the load generator and the harness's
// watches do, not statemanager's own client stack (src/etcd): the floor must not move when the
// code under test changes. It is a floor for the chain's hops, not for CPU per event:
// statemanager's watch client decodes its responses by hand (src/etcd/watch-response-decoder.ts),
// which costs less than etcd3's protobufjs decoding here.
// As a floor with statemanager's I/O (BENCH_RELAY_EVERY, BENCH_RELAY_STATE, BENCH_RELAY_ECHO,
// 'group' mode only): it relays one put event in every BENCH_RELAY_EVERY, each as
// BENCH_RELAY_STATE state writes are made (per state: a compare on its key, its put, a history
// put of about the size statemanager writes and the delete of the entry that falls out of the
// history), and also watches its own state keys as statemanager watches its states (not the
// history): the I/O statemanager adds to etcd, with nothing computed. The storm's floor writes
// one state per relayed event (scenarios/storm.ts); the latency scenario's two, a model's and
// its package's in one transaction, as statemanager folds them (scenarios/latency.ts).
// Driven by the harness over IPC ('ready' once the watch is created, then {cmd: 'stats'} and
// {cmd: 'exit'}); it exits by itself when the harness goes away.
import { Etcd3, type ICompare, type IKeyValue } from 'etcd3';
import { RELAY_HISTORY_PREFIX, RELAY_PREFIX, relayFloor, relayMode, relaysEvent, type RelayCommand, type RelayStats } from './lib/relay-client.js';

if (!process.env.BENCH_ETCD || !process.send) {
  process.stderr.write('relay.ts is started by the benchmark harness (test/bench/lib/relay-client.ts)\n');
  process.exit(2);
} else {
  const TXN_OPS = 128;
  const client = new Etcd3({ hosts: process.env.BENCH_ETCD });
  const prefix = Buffer.from(RELAY_PREFIX);
  // The second state of an event (a model's, where the first is its package's): still under the harness's watch.
  const secondPrefix = Buffer.from(`${RELAY_PREFIX}/m`);
  // statemanager's default history length: from then on every state write deletes the entry that falls out.
  const HISTORY_LENGTH = 50;
  const stats: RelayStats = { events: 0, puts: 0, errors: 0 };
  const watcher = await client.watch().prefix('/container/').create();
  type Put = { request_put: { key: Buffer; value: Buffer } };
  type Delete = { request_delete_range: { key: Buffer; range_end: Buffer } };
  /** One relayed write: its operations and, as state writes, the compares guarding them. */
  type Write = { puts: (Put | Delete)[]; compares: ICompare[] };
  const mode = relayMode(process.env.BENCH_RELAY_MODE);
  const floor = relayFloor(process.env);
  if (mode !== 'group' && (floor.every > 1 || floor.states > 0 || floor.echo)) throw new Error('the floor options need BENCH_RELAY_MODE=group');
  if (floor.echo) {
    const echo = await client.watch().prefix(`${RELAY_PREFIX}/`).create();
    echo.on('data', (res) => (stats.echoes = (stats.echoes ?? 0) + res.events.length));
    echo.on('error', (err: unknown) => failed(err));
  }
  // About the size of statemanager's history entry (src/etcd/state-store.ts: JSON of from, to, at, reason, source).
  const historyValue = Buffer.from(JSON.stringify({ kind: 'model', name: 'x'.repeat(24), from: 'Running', to: 'Exited', at: new Date(0).toISOString(), reason: 'containers: 1 exited, 1 running', source: 'relay', drawn: true }));
  const pending: Write[] = [];
  let inFlight = 0;
  // A failed write is counted and sent again (3 times at most), as a controller would.
  const failed = (err: unknown): boolean => {
    stats.errors++;
    stats.lastError = err instanceof Error ? err.message : String(err);
    return stats.errors < 1000;
  };
  const send = (writes: Write[], attempt = 0): void => {
    inFlight++;
    const compare: ICompare[] = [];
    const success: (Put | Delete)[] = [];
    for (const w of writes) {
      compare.push(...w.compares);
      success.push(...w.puts);
    }
    client.kv
      .txn({ compare, success, failure: [] })
      .then(
        () => (stats.puts += writes.length),
        (err: unknown) => {
          if (!failed(err) || attempt >= 3) return;
          if (mode === 'group') pending.unshift(...writes);
          else send(writes, attempt + 1);
        },
      )
      .finally(() => {
        inFlight--;
        flush();
      });
  };
  // Group commit, the rule statemanager's state store follows (src/etcd/state-store.ts): a write
  // goes out at once while fewer than 2 transactions are in flight, full ones (128 operations)
  // up to 8; the others wait for a slot and go out together.
  const opsOf = (w: Write): number => w.puts.length + w.compares.length;
  const flush = (): void => {
    while (pending.length > 0 && (inFlight < 2 || (inFlight < 8 && pending.length * opsOf(pending[0]!) >= TXN_OPS))) send(take(pending));
  };
  // The first puts of `ops` up to etcd's 128 operations or a key already taken (etcd refuses a
  // transaction that puts one key twice: at 3,000 flips/s over the quick fleet's targets a key
  // comes again within one batch), removed from `ops`.
  const take = (writes: Write[]): Write[] => {
    const keys = new Set<string>();
    let n = 0;
    let ops = 0;
    for (; n < writes.length && ops + opsOf(writes[n]!) <= TXN_OPS; n++) {
      const k = (writes[n]!.puts[0] as Put).request_put.key.toString('latin1');
      if (keys.has(k)) break;
      keys.add(k);
      ops += opsOf(writes[n]!);
    }
    return writes.splice(0, Math.max(1, n));
  };
  /** Writes per container key so far: the history sequence, as a state key's version is statemanager's. */
  const versions = new Map<string, number>();
  const historyKey = (stateKey: Buffer, seq: number): Buffer => Buffer.from(`${RELAY_HISTORY_PREFIX}${stateKey.toString('latin1')}/${String(seq).padStart(12, '0')}`, 'latin1');
  /** `floor.states` guarded state writes for one event: the relayed key first (the harness matches it), then a second key. */
  const stateWrites = (put: { key: Buffer; value: Buffer }, source: Buffer): Write => {
    const w: Write = { puts: [], compares: [] };
    const version = (versions.get(source.toString('latin1')) ?? 0) + 1;
    versions.set(source.toString('latin1'), version);
    for (let s = 0; s < floor.states; s++) {
      const key = s === 0 ? put.key : Buffer.concat([secondPrefix, source]);
      w.compares.push({ key, target: 'Version', result: 'Greater', version: -1 });
      w.puts.push({ request_put: { key, value: put.value } }, { request_put: { key: historyKey(key, version), value: historyValue } });
      if (version > HISTORY_LENGTH) w.puts.push({ request_delete_range: { key: historyKey(key, 0), range_end: historyKey(key, version - HISTORY_LENGTH + 1) } });
    }
    return w;
  };
  watcher.on('data', (res) => {
    const ops: Write[] = [];
    for (const ev of res.events) {
      if (ev.type !== 'Put') continue;
      if (!relaysEvent(stats.events++, floor.every)) continue;
      const kv = ev.kv as IKeyValue;
      const put = { key: Buffer.concat([prefix, kv.key]), value: Buffer.from(kv.mod_revision) };
      if (mode === 'puts') {
        const once = (attempt: number): void => {
          client.kv.put(put).then(
            () => stats.puts++,
            (err: unknown) => {
              if (failed(err) && attempt < 3) once(attempt + 1);
            },
          );
        };
        once(0);
      } else if (floor.states === 0) ops.push({ puts: [{ request_put: put }], compares: [] });
      else ops.push(stateWrites(put, kv.key));
    }
    if (mode === 'group') {
      pending.push(...ops);
      flush();
    } else while (ops.length > 0) send(take(ops));
  });
  watcher.on('error', (err: unknown) => failed(err));
  process.on('disconnect', () => process.exit(0));
  process.on('message', (msg: RelayCommand) => {
    if (msg.cmd === 'stats') process.send?.({ ok: true, result: { ...stats } });
    else {
      process.send?.({ ok: true, result: 'bye' });
      client.close();
      setTimeout(() => process.exit(0), 10);
    }
  });
  process.send({ ok: true, result: 'ready' });
}
