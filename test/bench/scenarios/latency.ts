// 3. latency: at fixed rates, the time from a container put's commit to the write of its
// package's new state. Both keys are watched by the harness; a package write is matched to the
// put that caused it by commit revision (the earliest unmatched put of that package below the
// write's revision whose expected package state is the one written).
// Then, at the same rates with the same generator, the two-hop relay floor: statemanager is
// stopped and a minimal relay process (test/bench/relay.ts) puts one key per container event;
// put sent → the relayed key's watch event is the least any controller's chain can take here.
// Then the relay with statemanager's I/O: per container event the transaction statemanager
// writes when a flip changes a model and its package (two guarded states, their history entries
// and the entries that fall out), and a watch on its own states, with nothing computed.
import type { RateResult } from '../generator.js';
import { log, sleep, summary, waitFor } from '../lib/common.js';
import { closeEnv, fmt, freshEtcd, generator, type Ctx, type Env, type ScenarioResult, type Target } from '../lib/context.js';
import { startAndConverge } from '../lib/converge.js';
import { currentRevision } from '../lib/etcdio.js';
import type { GeneratorProcess } from '../lib/generator-client.js';
import { canonicalState, verify } from '../lib/oracle.js';
import { histogramQuantile, metric, type StateManagerProcess } from '../lib/statemanager.js';
import { PrefixWatch, type SeenEvent } from '../lib/watch.js';
import { RELAY_HISTORY_PREFIX, RELAY_PREFIX, RelayProcess, relayFloorEnv, relayMode, type RelayMode } from '../lib/relay-client.js';

const RELAY_MODE_TEXT: Record<RelayMode, string> = { group: 'group commit', txn: 'one transaction per watch response', puts: 'one put per event' };
import { cpuWindow, etcdPid, formatShares, waitQuiet, type CpuShares } from '../lib/cpu.js';

export interface RateFigures {
  rate: number;
  achievedRate: number;
  puts: number;
  matched: number;
  coalesced: number;
  unmatchedPuts: number;
  unexplainedWrites: number;
  /** Watch-observed commit of the container put → watch-observed package state write. */
  latency: ReturnType<typeof summary>;
  /** The generator's acknowledgement of the put → watch-observed package write. */
  latencyFromAck: ReturnType<typeof summary>;
  /** The generator sending the put → the harness's watch seeing the package write (end to end). */
  endToEnd: ReturnType<typeof summary>;
  /** etcd's own floor in the same run: the generator sending the put → the harness's watch seeing that put. */
  floor: ReturnType<typeof summary>;
  /** etcd's round trip for one put in the same run: the generator sending it → its acknowledgement. */
  putRoundTrip: ReturnType<typeof summary>;
  cpu: CpuShares;
  /** statemanager's own view (statemanager_container_to_package_lag_seconds): bucket upper bounds, ms. */
  internalLag: { p50: number; p99: number; count: number };
  /** The two-hop relay at the same rate, measured after statemanager's rates (absent with --no-relay). */
  relay?: RelayFigures;
  /** The relay with statemanager's I/O (two guarded states and their history per event, its own states watched), after the two-hop relay. */
  ioRelay?: RelayFigures;
}

/** The relay with statemanager's I/O in the latency scenario: every event, a model's and its package's state, echoed. */
export const IO_RELAY = { every: 1, states: 2, echo: true } as const;

/**
 * The two-hop relay floor at one rate: the same generator and flips, statemanager stopped, the
 * relay (test/bench/relay.ts) putting RELAY_PREFIX + container key for every container event.
 */
export interface RelayFigures {
  rate: number;
  achievedRate: number;
  puts: number;
  /** Acknowledged puts whose relayed write the harness saw. */
  matched: number;
  /** Watch-observed container put → watch-observed relayed put. */
  latency: ReturnType<typeof summary>;
  /** The generator sending the put → the harness's watch seeing the relayed put (as endToEnd above). */
  endToEnd: ReturnType<typeof summary>;
  /** etcd's floor in this phase: the generator sending the put → the harness's watch seeing it. */
  floor: ReturnType<typeof summary>;
  putRoundTrip: ReturnType<typeof summary>;
  cpu: CpuShares;
  relayErrors: number;
  /** The relay's last error message, if any. */
  relayLastError?: string;
  /** How the relay wrote (BENCH_RELAY_MODE): 'group' commit (the default), 'txn' per watch response, 'puts'. */
  mode: RelayMode;
}

async function measureRate(ctx: Ctx, env: Env, gen: GeneratorProcess, sm: StateManagerProcess, rate: number, seconds: number): Promise<RateFigures> {
  const containerSeen = new Map<number, number>();
  const pkgEvents = new Map<string, SeenEvent[]>();
  const cw = new PrefixWatch(env.client, '/container/', (e) => containerSeen.set(e.modRevision, e.t));
  const pw = new PrefixWatch(env.client, '/package/', (e) => {
    if (!e.key.endsWith('/state') || e.type !== 'put') return;
    const name = e.key.slice('/package/'.length, -'/state'.length);
    let l = pkgEvents.get(name);
    if (!l) pkgEvents.set(name, (l = []));
    l.push(e);
  });
  const from = (await currentRevision(env.client)) + 1;
  await cw.start(from);
  await pw.start(from);
  log(`latency: ${fmt.n(rate)} puts/s for ${seconds} s`);
  await waitQuiet({ statemanager: sm.pid, etcd: etcdPid(env.etcd.dataDir), generator: gen.pid }, ctx.opts.quick ? 0 : 60_000);
  const scrapeBefore = await sm.scrape();
  const cpu = cpuWindow({ statemanager: sm.pid, etcd: etcdPid(env.etcd.dataDir), generator: gen.pid });
  const res = await gen.call<RateResult>({ cmd: 'rate', rate, seconds }, (seconds + 60) * 1000);
  const cpuShares = cpu.end();
  // Wait for statemanager to finish, then for the watch to deliver the last writes.
  let lastRev = 0;
  for (const r of res.rev) if (r > lastRev) lastRev = r;
  await waitFor(async () => {
    const m = await sm.scrape();
    return metric(m, 'statemanager_informer_last_revision', { informer: 'containers' }) >= lastRev && metric(m, 'workqueue_depth', { name: 'model' }) + metric(m, 'workqueue_depth', { name: 'package' }) === 0;
  }, 60_000, 50);
  const scrapeAfter = await sm.scrape();
  const lagName = 'statemanager_container_to_package_lag_seconds';
  const l50 = histogramQuantile(scrapeBefore, scrapeAfter, lagName, 0.5);
  const l99 = histogramQuantile(scrapeBefore, scrapeAfter, lagName, 0.99);
  const settled = await currentRevision(env.client);
  await waitFor(() => pw.lastRevision >= settled || cw.lastRevision >= settled, 5000, 20);
  await sleep(200);
  await cw.stop();
  await pw.stop();

  // Puts by package, in revision order.
  const byPkg = new Map<string, number[]>();
  for (let i = 0; i < res.puts; i++) {
    if (res.rev[i]! <= 0) continue;
    const name = ctx.fleet.packageName(res.pkg[i]!);
    let l = byPkg.get(name);
    if (!l) byPkg.set(name, (l = []));
    l.push(i);
  }
  const lat: number[] = [];
  const latAck: number[] = [];
  const e2e: number[] = [];
  const floor: number[] = [];
  const roundTrip: number[] = [];
  for (let i = 0; i < res.puts; i++) {
    const seen = res.rev[i]! > 0 ? containerSeen.get(res.rev[i]!) : undefined;
    if (seen !== undefined) floor.push(seen - res.sentT[i]!);
    if (res.rev[i]! > 0) roundTrip.push(res.ackT[i]! - res.sentT[i]!);
  }
  let coalesced = 0;
  let unexplained = 0;
  let matched = 0;
  let unmatched = 0;
  for (const [name, idx] of byPkg) {
    idx.sort((a, b) => res.rev[a]! - res.rev[b]!);
    const events = (pkgEvents.get(name) ?? []).sort((a, b) => a.modRevision - b.modRevision);
    let next = 0;
    for (const e of events) {
      const value = canonicalState('package', e.value);
      let j = next;
      while (j < idx.length && res.rev[idx[j]!]! < e.modRevision && (res.toDead[idx[j]!] ? 'Degraded' : 'Running') !== value) j++;
      if (j >= idx.length || res.rev[idx[j]!]! >= e.modRevision) {
        unexplained++;
        continue;
      }
      coalesced += j - next;
      const i = idx[j]!;
      const commitSeen = containerSeen.get(res.rev[i]!);
      if (commitSeen !== undefined) lat.push(e.t - commitSeen);
      latAck.push(e.t - res.ackT[i]!);
      e2e.push(e.t - res.sentT[i]!);
      matched++;
      next = j + 1;
    }
    unmatched += idx.length - next;
  }
  return {
    rate,
    achievedRate: res.achievedRate,
    puts: res.puts,
    matched,
    coalesced,
    unmatchedPuts: unmatched,
    unexplainedWrites: unexplained,
    latency: summary(lat),
    latencyFromAck: summary(latAck),
    endToEnd: summary(e2e),
    floor: summary(floor),
    putRoundTrip: summary(roundTrip),
    cpu: cpuShares,
    internalLag: { p50: l50.value * 1000, p99: l99.value * 1000, count: l50.count },
  };
}

async function measureRelay(ctx: Ctx, env: Env, gen: GeneratorProcess, relay: RelayProcess, rate: number, seconds: number, name: string, mode: RelayMode): Promise<RelayFigures> {
  const containerSeen = new Map<number, number>();
  // Source (container put) revision → when the harness saw its relayed write.
  const relayedSeen = new Map<number, number>();
  const cw = new PrefixWatch(env.client, '/container/', (e) => containerSeen.set(e.modRevision, e.t));
  const rw = new PrefixWatch(env.client, `${RELAY_PREFIX}/`, (e) => {
    const source = Number(e.value);
    if (e.type === 'put' && !relayedSeen.has(source)) relayedSeen.set(source, e.t);
  });
  const from = (await currentRevision(env.client)) + 1;
  await cw.start(from);
  await rw.start(from);
  log(`latency, ${name}: ${fmt.n(rate)} puts/s for ${seconds} s`);
  const pids = { relay: relay.pid, etcd: etcdPid(env.etcd.dataDir), generator: gen.pid };
  await waitQuiet(pids, ctx.opts.quick ? 0 : 60_000);
  const before = await relay.stats();
  const cpu = cpuWindow(pids);
  const res = await gen.call<RateResult>({ cmd: 'rate', rate, seconds }, (seconds + 60) * 1000);
  const cpuShares = cpu.end();
  let acked = 0;
  for (let i = 0; i < res.puts; i++) if (res.rev[i]! > 0) acked++;
  await waitFor(() => relayedSeen.size >= acked, 30_000, 20);
  const after = await relay.stats();
  await sleep(100);
  await cw.stop();
  await rw.stop();
  const lat: number[] = [];
  const e2e: number[] = [];
  const floor: number[] = [];
  const roundTrip: number[] = [];
  let matched = 0;
  for (let i = 0; i < res.puts; i++) {
    const rev = res.rev[i]!;
    if (rev <= 0) continue;
    roundTrip.push(res.ackT[i]! - res.sentT[i]!);
    const seen = containerSeen.get(rev);
    if (seen !== undefined) floor.push(seen - res.sentT[i]!);
    const relayed = relayedSeen.get(rev);
    if (relayed === undefined) continue;
    matched++;
    e2e.push(relayed - res.sentT[i]!);
    if (seen !== undefined) lat.push(relayed - seen);
  }
  return {
    rate,
    achievedRate: res.achievedRate,
    puts: res.puts,
    matched,
    latency: summary(lat),
    endToEnd: summary(e2e),
    floor: summary(floor),
    putRoundTrip: summary(roundTrip),
    cpu: cpuShares,
    relayErrors: after.errors - before.errors,
    ...(after.errors > before.errors && after.lastError ? { relayLastError: after.lastError } : {}),
    mode,
  };
}

export async function latency(ctx: Ctx): Promise<ScenarioResult> {
  let env: Env | undefined;
  let gen: GeneratorProcess | undefined;
  let sm: StateManagerProcess | undefined;
  let relay: RelayProcess | undefined;
  try {
    env = await freshEtcd(ctx);
    const conv = await startAndConverge(ctx, env, 'latency');
    sm = conv.sm;
    if (!conv.converged) throw new Error(`statemanager did not converge before the latency runs (${conv.remaining} wrong)`);
    gen = await generator(ctx, env);
    await sleep(500);
    const ceilingRate = ctx.ceiling?.rate ?? 3600;
    const rows: RateFigures[] = [];
    for (const r of ctx.opts.latencyRates) {
      const rate = r === 'half-ceiling' ? Math.round(ceilingRate / 2) : r;
      rows.push(await measureRate(ctx, env, gen, sm, rate, ctx.opts.latencySeconds));
      await sleep(300);
    }
    const check = await verify(env.client);
    if (ctx.opts.relay) {
      // The relay in statemanager's place, at the same rates: statemanager stops (its states
      // were checked above) so only the relay acts on the generator's puts.
      await sm.stop();
      sm = undefined;
      // Quick runs (CI) only at the rates with goals, to keep their length.
      const relayed = rows.filter((x) => !ctx.opts.quick || (FLOOR_RATES as readonly number[]).includes(x.rate));
      relay = new RelayProcess(ctx.root, env.etcd.endpoint);
      await relay.start();
      await sleep(300);
      for (const x of relayed) {
        x.relay = await measureRelay(ctx, env, gen, relay, x.rate, ctx.opts.latencySeconds, 'two-hop relay', relayMode(process.env.BENCH_RELAY_MODE));
        await sleep(300);
      }
      await relay.stop();
      relay = new RelayProcess(ctx.root, env.etcd.endpoint, relayFloorEnv(IO_RELAY));
      await relay.start();
      await sleep(300);
      for (const x of relayed) {
        x.ioRelay = await measureRelay(ctx, env, gen, relay, x.rate, ctx.opts.latencySeconds, "relay with statemanager's I/O", 'group');
        await sleep(300);
      }
      await relay.stop();
      relay = undefined;
      await env.client.delete().prefix(`${RELAY_PREFIX}/`).exec();
      await env.client.delete().prefix(`${RELAY_HISTORY_PREFIX}/`).exec();
    }
    const table: [string, string][] = rows.map((x) => [
      `${fmt.n(x.rate)} puts/s`,
      `p50 ${fmt.ms(x.latency.p50)}, p99 ${fmt.ms(x.latency.p99)}, max ${fmt.ms(x.latency.max)} (from the put's acknowledgement: p99 ${fmt.ms(x.latencyFromAck.p99)}; ${fmt.n(x.matched)} of ${fmt.n(x.puts)} puts matched, achieved ${fmt.n(x.achievedRate)}/s${x.coalesced ? `, ${x.coalesced} coalesced` : ''}${x.unexplainedWrites ? `, ${x.unexplainedWrites} unexplained writes` : ''})`,
    ]);
    for (const x of rows) {
      table.push([
        `  vs etcd's floor at ${fmt.n(x.rate)}/s`,
        `put sent → package state event p99 ${fmt.ms(x.endToEnd.p99)}; put sent → the put's own watch event p99 ${fmt.ms(x.floor.p99)} (p50 ${fmt.ms(x.floor.p50)}): ${ratio(x).toFixed(2)}×`,
      ]);
    }
    // Issue 22, item 2: p50 and p99 against etcd's own floor at each of the three rates, same run.
    for (const rate of FLOOR_RATES) {
      const x = rows.find((r) => r.rate === rate);
      table.push([`  p50 and p99 vs etcd's floor at ${fmt.n(rate)}/s`, x ? floorText(x) : 'not run']);
    }
    for (const x of rows) if (x.relay) table.push([`  two-hop relay at ${fmt.n(x.rate)}/s`, relayText(x, x.relay)]);
    for (const x of rows) if (x.ioRelay) table.push([`  relay with statemanager's I/O at ${fmt.n(x.rate)}/s`, relayText(x, x.ioRelay)]);
    for (const x of rows) table.push([`  CPU at ${fmt.n(x.rate)}/s`, formatShares(x.cpu)]);
    for (const x of rows) if (x.relay) table.push([`  CPU, relay at ${fmt.n(x.rate)}/s`, formatShares(x.relay.cpu)]);
    for (const x of rows) if (x.ioRelay) table.push([`  CPU, relay with statemanager's I/O at ${fmt.n(x.rate)}/s`, formatShares(x.ioRelay.cpu)]);
    for (const x of rows) {
      table.push([`  inside statemanager at ${fmt.n(x.rate)}/s`, `container event seen → package state committed: p50 ≤ ${fmt.ms(x.internalLag.p50)}, p99 ≤ ${fmt.ms(x.internalLag.p99)} (histogram buckets)`]);
    }
    table.push(['correctness', check.ok ? `ok (${check.checked.models} models, ${check.checked.packages} packages)` : `FAILED: ${check.mismatchCount} wrong`]);
    const targets: Target[] = [];
    const at1000 = rows.find((x) => x.rate === 1000);
    if (at1000) targets.push({ name: 'latency p99 at 1,000/s', target: '≤ 20 ms', value: fmt.ms(at1000.latency.p99), met: at1000.latency.p99 <= 20 });
    const half = ctx.opts.latencyRates.indexOf('half-ceiling');
    if (half >= 0) {
      const x = rows[half]!;
      targets.push({ name: `latency p99 at 50 % of ceiling (${fmt.n(x.rate)}/s)`, target: '≤ 100 ms', value: fmt.ms(x.latency.p99), met: x.latency.p99 <= 100 });
    }
    for (const [rate, limit] of [
      [1000, 2.0],
      [3000, 2.5],
    ] as const) {
      // Issue 13's rows are always listed; a rate left out of --latency-rates shows as not run.
      const x = rows.find((r) => r.rate === rate);
      const name = `latency p99 / etcd floor p99 at ${fmt.n(rate)}/s`;
      const target = `≤ ${limit.toFixed(1)}×`;
      if (x) targets.push({ name, target, value: `${ratio(x).toFixed(2)}× (${fmt.ms(x.endToEnd.p99)} vs ${fmt.ms(x.floor.p99)})`, met: ratio(x) <= limit });
      else targets.push({ name, target, value: 'not run', met: null });
    }
    for (const rate of FLOOR_RATES) {
      // Measured, no goal of their own: the p99 goals are the rows above; p50 shows whether an idle etcd sees a batching delay.
      const x = rows.find((r) => r.rate === rate);
      targets.push({ name: `latency p50 and p99 vs etcd floor at ${fmt.n(rate)}/s`, target: 'measured', value: x ? floorText(x) : 'not run', met: null });
    }
    if (ctx.opts.relay) {
      const relays: [string, (x: RateFigures) => RelayFigures | undefined][] = [
        ['two-hop relay', (x) => x.relay],
        ["relay with statemanager's I/O", (x) => x.ioRelay],
      ];
      for (const [name, of] of relays) {
        for (const rate of FLOOR_RATES) {
          // Measured, no goal of their own: what the least a controller can do costs here, and statemanager against it.
          const x = rows.find((r) => r.rate === rate);
          const y = x && of(x);
          targets.push({
            name: `${name} p99 / etcd floor p99 at ${fmt.n(rate)}/s`,
            target: 'measured',
            value: y ? `${ratio(y).toFixed(2)}× (${fmt.ms(y.endToEnd.p99)} vs ${fmt.ms(y.floor.p99)}; p50 ${ratio50(y).toFixed(2)}×)` : 'not run',
            met: null,
          });
          targets.push({
            name: `latency p99 / ${name} p99 at ${fmt.n(rate)}/s`,
            target: 'measured',
            // Each phase against its own etcd floor too: the phases are minutes apart, other work on the machine may differ.
            value: x && y ? `${vsRelay(x, y).toFixed(2)}× (${fmt.ms(x.endToEnd.p99)} vs ${fmt.ms(y.endToEnd.p99)}; p50 ${vsRelay50(x, y).toFixed(2)}×); each ÷ its phase's etcd floor p99: statemanager ${ratio(x).toFixed(2)}×, relay ${ratio(y).toFixed(2)}×` : 'not run',
            met: null,
          });
        }
      }
    }
    for (const x of rows) {
      if (x.relay && x.relay.matched < x.relay.puts * 0.95) targets.push({ name: `two-hop relay matching at ${x.rate}/s`, target: '≥ 95 % of puts relayed', value: `${x.relay.matched}/${x.relay.puts}`, met: false });
      if (x.ioRelay && x.ioRelay.matched < x.ioRelay.puts * 0.95) targets.push({ name: `relay with statemanager's I/O matching at ${x.rate}/s`, target: '≥ 95 % of puts relayed', value: `${x.ioRelay.matched}/${x.ioRelay.puts}`, met: false });
      if (x.matched < x.puts * 0.95) targets.push({ name: `latency matching at ${x.rate}/s`, target: '≥ 95 % of puts matched', value: `${x.matched}/${x.puts}`, met: false });
    }
    return { name: 'latency', figures: { rates: rows, ceilingUsed: ceilingRate }, table, targets, correctness: { ok: check.ok, detail: check.mismatches } };
  } finally {
    await relay?.stop();
    await gen?.stop();
    await sm?.stop();
    await closeEnv(env);
  }
}

/** The rates whose p50 and p99 are always set against etcd's floor (issue 22, item 2). */
export const FLOOR_RATES = [100, 1000, 3000] as const;

/** End-to-end p50 over etcd's own put → watch p50, measured in the same run. */
export function ratio50(x: Pick<RateFigures, 'endToEnd' | 'floor'>): number {
  return x.floor.p50 > 0 ? x.endToEnd.p50 / x.floor.p50 : Number.POSITIVE_INFINITY;
}

/**
 * "p50 12.0 ms vs 5.0 ms (2.40×), p99 …": put sent → package state event against put sent → the
 * put's own watch event. The chain is that floor, then the state transaction(s) and one more
 * watch hop: with no wait anywhere its p50 is about 2 × floor p50 with one transaction (model and
 * package together) and 2 × floor p50 + one put round trip with two (model, then package).
 */
function floorText(x: RateFigures): string {
  const one = 2 * x.floor.p50;
  const two = one + x.putRoundTrip.p50;
  return (
    `p50 ${fmt.ms(x.endToEnd.p50)} vs ${fmt.ms(x.floor.p50)} (${ratio50(x).toFixed(2)}×), p99 ${fmt.ms(x.endToEnd.p99)} vs ${fmt.ms(x.floor.p99)} (${ratio(x).toFixed(2)}×); ` +
    `put round trip p50 ${fmt.ms(x.putRoundTrip.p50)}; no-wait chain p50 ${fmt.ms(one)} with one transaction, ${fmt.ms(two)} with two (p50 ÷ them ${(x.endToEnd.p50 / one).toFixed(2)}×, ${(x.endToEnd.p50 / two).toFixed(2)}×)`
  );
}

/** statemanager's end-to-end p99 over the two-hop relay's, same rate, same run. */
export function vsRelay(x: Pick<RateFigures, 'endToEnd'>, y: Pick<RelayFigures, 'endToEnd'>): number {
  return y.endToEnd.p99 > 0 ? x.endToEnd.p99 / y.endToEnd.p99 : Number.POSITIVE_INFINITY;
}

export function vsRelay50(x: Pick<RateFigures, 'endToEnd'>, y: Pick<RelayFigures, 'endToEnd'>): number {
  return y.endToEnd.p50 > 0 ? x.endToEnd.p50 / y.endToEnd.p50 : Number.POSITIVE_INFINITY;
}

/** "put sent → relayed key's watch event p50 …, p99 … (… × etcd's floor …); statemanager ÷ relay …". */
function relayText(x: RateFigures, y: RelayFigures): string {
  return (
    `put sent → relayed key's watch event p50 ${fmt.ms(y.endToEnd.p50)}, p99 ${fmt.ms(y.endToEnd.p99)}; etcd's floor in that phase p50 ${fmt.ms(y.floor.p50)}, p99 ${fmt.ms(y.floor.p99)}: ` +
    `relay ÷ floor p50 ${ratio50(y).toFixed(2)}×, p99 ${ratio(y).toFixed(2)}×; statemanager ÷ relay p50 ${vsRelay50(x, y).toFixed(2)}×, p99 ${vsRelay(x, y).toFixed(2)}× ` +
    `(${RELAY_MODE_TEXT[y.mode]}; ${fmt.n(y.matched)} of ${fmt.n(y.puts)} puts relayed, achieved ${fmt.n(y.achievedRate)}/s${y.relayErrors ? `, ${y.relayErrors} relay errors, the last: ${y.relayLastError ?? '?'}` : ''})`
  );
}

/** End-to-end p99 over etcd's own put → watch p99, measured in the same run. */
export function ratio(x: Pick<RateFigures, 'endToEnd' | 'floor'>): number {
  return x.floor.p99 > 0 ? x.endToEnd.p99 / x.floor.p99 : Number.POSITIVE_INFINITY;
}
