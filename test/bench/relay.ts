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
// As the storm's floor (BENCH_RELAY_EVERY, BENCH_RELAY_STATE, BENCH_RELAY_ECHO, 'group' mode
// only): it relays one put event in every BENCH_RELAY_EVERY, each as a state write is made (a
// compare on the relayed key, its put and a history put of about the size statemanager writes),
// and also watches its own writes as statemanager watches its states: the I/O statemanager adds
// to etcd during a storm, with nothing computed (scenarios/storm.ts).
// Driven by the harness over IPC ('ready' once the watch is created, then {cmd: 'stats'} and
// {cmd: 'exit'}); it exits by itself when the harness goes away.
import { Etcd3, type ICompare, type IKeyValue } from 'etcd3';
import { RELAY_PREFIX, relayFloor, relayMode, relaysEvent, type RelayCommand, type RelayStats } from './lib/relay-client.js';

if (!process.env.BENCH_ETCD || !process.send) {
  process.stderr.write('relay.ts is started by the benchmark harness (test/bench/lib/relay-client.ts)\n');
  process.exit(2);
} else {
  const TXN_OPS = 128;
  const client = new Etcd3({ hosts: process.env.BENCH_ETCD });
  const prefix = Buffer.from(RELAY_PREFIX);
  const HISTORY = Buffer.from('/history');
  const stats: RelayStats = { events: 0, puts: 0, errors: 0 };
  const watcher = await client.watch().prefix('/container/').create();
  type Put = { request_put: { key: Buffer; value: Buffer } };
  /** One relayed write: its puts and, as a state write, the compare guarding it. */
  type Write = { puts: Put[]; compare: ICompare | undefined };
  const mode = relayMode(process.env.BENCH_RELAY_MODE);
  const floor = relayFloor(process.env);
  if (mode !== 'group' && (floor.every > 1 || floor.state || floor.echo)) throw new Error('the storm floor options need BENCH_RELAY_MODE=group');
  if (floor.echo) {
    const echo = await client.watch().prefix(RELAY_PREFIX).create();
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
    const success: Put[] = [];
    for (const w of writes) {
      if (w.compare) compare.push(w.compare);
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
  const opsOf = (w: Write): number => w.puts.length + (w.compare ? 1 : 0);
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
      const k = writes[n]!.puts[0]!.request_put.key.toString('latin1');
      if (keys.has(k)) break;
      keys.add(k);
      ops += opsOf(writes[n]!);
    }
    return writes.splice(0, Math.max(1, n));
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
      } else if (!floor.state) ops.push({ puts: [{ request_put: put }], compare: undefined });
      else {
        const history = { key: Buffer.concat([prefix, HISTORY, kv.key, Buffer.from(`/${kv.mod_revision}`)]), value: historyValue };
        ops.push({ puts: [{ request_put: put }, { request_put: history }], compare: { key: put.key, target: 'Version', result: 'Greater', version: -1 } });
      }
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
