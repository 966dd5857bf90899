// 6. saturation (issue 13, docs/scaling.md): where does one leader run out? Container puts at
// increasing paced rates (default 1,000, 2,000, 4,000 and 8,000/s, 5 s each; the storm's status
// mix on random containers), first against the leader alone, then again with a follower replica
// watching everything (it holds no lock: the harness holds the leader key, so the follower stays a
// follower and shows what watching and filtering every event costs a replica that owns none).
//
// Per step: offered and accepted puts/s, the leader's (and follower's) CPU as a share of a core
// and in µs per event (idle CPU subtracted, work until drained included), etcd's and the
// harness's CPU, events behind the containers informer, queue depth and its trend,
// processed / accepted 1 s after the last put, the time to drain, and one probe of etcd's commit →
// watch delay (a put the harness both acknowledges and watches: what a cross-shard hop costs).
// The saturation point is the first step where the queue grows, processed / accepted < 1 or the
// leader uses ≥ 90 % of a core. A step whose accepted rate misses the offered rate by > 10 % is
// bound by the load side (the harness's puts and etcd on this machine), not by statemanager.
//
// After the paced steps, a backlog step: the leader is stopped while puts are written for 4 s,
// then resumed; how fast it consumes them is its own ceiling with no generator competing.
//
// Before each step it waits (up to BENCH_SAT_QUIET_MS, 30 s) for other processes to use less than
// 10 % of a core; the shares report what others still used ("others").
//
// Environment: BENCH_SAT_RATES=1000,2000,4000,8000, BENCH_SAT_SECONDS=5,
// BENCH_SAT_FOLLOWER=0 to skip the pass with a follower, BENCH_SAT_BACKLOG=0 to skip the backlog.
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../helpers/etcd.js';
import { log, monoMs, percentile, rng, sleep, summary, waitFor } from '../lib/common.js';
import { closeEnv, fmt, freshEtcd, type Ctx, type Env, type ScenarioResult, type Target } from '../lib/context.js';
import { startAndConverge } from '../lib/converge.js';
import { cpuWindow, etcdPid, formatShares, waitQuiet, type CpuShares } from '../lib/cpu.js';
import { STATUS_INDEX, type Fleet } from '../lib/fleet.js';
import { verify } from '../lib/oracle.js';
import { spawnTracked, stopChild } from '../lib/procs.js';
import { metric, metricSum, parseMetrics, Sampler, type MetricMap, type Sample, type StateManagerProcess } from '../lib/statemanager.js';
import { PrefixWatch } from '../lib/watch.js';

const PROBE_PREFIX = '/bench-probe/';

/** A second statemanager with leader election on, started while the harness holds the lock. */
class Follower {
  child: ChildProcess | undefined;
  httpPort = 0;

  constructor(
    private readonly ctx: Ctx,
    private readonly env: Env,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    this.httpPort = await freePort();
    const grpcPort = await freePort();
    const configFile = join(this.ctx.workDir, 'statemanager-follower.yaml');
    writeFileSync(configFile, 'log:\n  level: warn\nleaderElection:\n  identity: bench-follower\n');
    const out = createWriteStream(join(this.ctx.workDir, 'statemanager-follower.log'), { flags: 'a' });
    const child = spawnTracked(process.execPath, [join(this.ctx.opts.smRoot, 'dist/src/main.js')], {
      cwd: this.ctx.opts.smRoot,
      env: {
        ...process.env,
        ETCD_ENDPOINTS: this.env.etcd.endpoint,
        STATEMANAGER_HTTP_ADDR: `127.0.0.1:${this.httpPort}`,
        STATEMANAGER_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
        ACTION_CONTROLLER_ADDR: this.ctx.ac.addr,
        STATEMANAGER_CONFIG: configFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    this.child = child;
    const ok = await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`follower exited with ${child.exitCode}`);
      try {
        const res = await fetch(`http://127.0.0.1:${this.httpPort}/readyz`);
        await res.text();
        return res.status === 200;
      } catch {
        return false;
      }
    }, 60_000, 20);
    if (!ok) throw new Error('follower not ready within 60 s');
  }

  async scrape(): Promise<MetricMap> {
    const res = await fetch(`http://127.0.0.1:${this.httpPort}/metrics`);
    return parseMetrics(await res.text());
  }

  async revision(): Promise<number> {
    return metric(await this.scrape(), 'statemanager_informer_last_revision', { informer: 'containers' });
  }

  async stop(): Promise<void> {
    if (this.child) await stopChild(this.child, 'SIGTERM', 30_000);
    this.child = undefined;
  }
}

/** The harness's node agents: paced single puts with the storm's mix, never two puts of one key in flight. */
class PacedPuts {
  private readonly status: Uint8Array;
  private readonly generation: Uint32Array;
  private readonly random: () => number;
  private readonly busy = new Set<number>();

  constructor(
    private readonly env: Env,
    private readonly fleet: Fleet,
  ) {
    this.status = Uint8Array.from(fleet.initial);
    this.generation = new Uint32Array(fleet.containers);
    this.random = rng(fleet.shape.seed * 31 + 5);
  }

  private nextStatus(current: number): number {
    const mix: [number, number][] = [
      [STATUS_INDEX.running, 40],
      [STATUS_INDEX.restarting, 10],
      [STATUS_INDEX.paused, 15],
      [STATUS_INDEX.exited, 20],
      [STATUS_INDEX.dead, 15],
    ];
    for (let i = 0; i < 16; i++) {
      let r = this.random() * 100;
      for (const [s, w] of mix) {
        r -= w;
        if (r < 0) {
          if (s !== current) return s;
          break;
        }
      }
    }
    return current === STATUS_INDEX.running ? STATUS_INDEX.exited : STATUS_INDEX.running;
  }

  async run(rate: number, seconds: number, maxInFlight = 512): Promise<{ puts: number; errors: number; t0: number; t1: number; ackT: Float64Array; rev: Float64Array; latency: number[] }> {
    const total = Math.round(rate * seconds);
    const ackT = new Float64Array(total);
    const rev = new Float64Array(total);
    const latency: number[] = [];
    let issued = 0;
    let ok = 0;
    let errors = 0;
    let inFlight = 0;
    const t0 = monoMs();
    const end = t0 + seconds * 1000;
    await new Promise<void>((resolve) => {
      const finish = (): void => {
        if (monoMs() >= end && inFlight === 0) resolve();
      };
      const tick = (): void => {
        const now = monoMs();
        const due = now >= end ? issued : Math.min(total, Math.floor(((now - t0) * rate) / 1000) + 1);
        while (issued < due && inFlight < maxInFlight) {
          let c = Math.floor(this.random() * this.fleet.containers);
          for (let tries = 0; this.busy.has(c) && tries < 100; tries++) c = Math.floor(this.random() * this.fleet.containers);
          if (this.busy.has(c)) break;
          issued++;
          this.busy.add(c);
          const s = this.nextStatus(this.status[c]!);
          this.status[c] = s;
          this.generation[c]!++;
          inFlight++;
          const sent = monoMs();
          this.env.client.kv
            .put({ key: Buffer.from(this.fleet.containerKey(c)), value: Buffer.from(this.fleet.containerValue(c, s, this.generation[c])) })
            .then(
              (res) => {
                const i = ok++;
                ackT[i] = monoMs();
                rev[i] = Number(res.header.revision);
                if (latency.length < 100_000) latency.push(ackT[i]! - sent);
              },
              () => errors++,
            )
            .finally(() => {
              this.busy.delete(c);
              inFlight--;
              finish();
            });
        }
        if (monoMs() < end) setTimeout(tick, 1);
        else finish();
      };
      tick();
    });
    let t1 = t0;
    for (let i = 0; i < ok; i++) if (ackT[i]! > t1) t1 = ackT[i]!;
    return { puts: ok, errors, t0, t1, ackT: ackT.slice(0, ok), rev: rev.slice(0, ok), latency };
  }
}

/** Every 50 ms a put of a key nobody else watches: its acknowledgement vs its watch event. */
class WatchProbe {
  private readonly sent = new Map<number, { sent: number; ack: number }>();
  private readonly seen = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly watch: PrefixWatch;
  private n = 0;

  constructor(private readonly env: Env) {
    this.watch = new PrefixWatch(env.client, PROBE_PREFIX, (e) => this.seen.set(e.modRevision, e.t));
  }

  async start(fromRevision: number): Promise<void> {
    await this.watch.start(fromRevision);
  }

  begin(): void {
    this.sent.clear();
    this.seen.clear();
    this.timer = setInterval(() => {
      const t = monoMs();
      this.env.client.kv.put({ key: Buffer.from(`${PROBE_PREFIX}p`), value: Buffer.from(String(this.n++)) }).then(
        (res) => this.sent.set(Number(res.header.revision), { sent: t, ack: monoMs() }),
        () => undefined,
      );
    }, 50);
  }

  /** Stop probing; watch − ack and put → watch, ms. */
  async end(): Promise<{ watchAfterAck: ReturnType<typeof summary>; putToWatch: ReturnType<typeof summary>; putToAck: ReturnType<typeof summary> }> {
    clearInterval(this.timer);
    await sleep(300);
    const after: number[] = [];
    const toWatch: number[] = [];
    const toAck: number[] = [];
    for (const [r, s] of this.sent) {
      const w = this.seen.get(r);
      toAck.push(s.ack - s.sent);
      if (w === undefined) continue;
      after.push(w - s.ack);
      toWatch.push(w - s.sent);
    }
    return { watchAfterAck: summary(after), putToWatch: summary(toWatch), putToAck: summary(toAck) };
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.watch.stop();
  }
}

/**
 * The leader has applied everything up to `lastRev`: its containers informer is past it, and the
 * model and package queues are empty with no worker busy, on two scrapes in a row.
 */
async function waitSettled(sm: StateManagerProcess, lastRev: number, timeoutMs: number): Promise<{ consumedAt: number; settledAt: number }> {
  let consumedAt = NaN;
  let settledAt = NaN;
  let quiet = 0;
  await waitFor(async () => {
    const m = await sm.scrape().catch(() => undefined);
    if (!m) return false;
    const now = monoMs();
    if (Number.isNaN(consumedAt) && metric(m, 'statemanager_informer_last_revision', { informer: 'containers' }) >= lastRev) consumedAt = now;
    const idle =
      metric(m, 'workqueue_depth', { name: 'model' }) + metric(m, 'workqueue_depth', { name: 'package' }) === 0 &&
      metric(m, 'controller_runtime_active_workers', { controller: 'model' }) + metric(m, 'controller_runtime_active_workers', { controller: 'package' }) === 0;
    if (!Number.isNaN(consumedAt) && idle) {
      if (quiet++ === 0) settledAt = now;
    } else {
      quiet = 0;
    }
    return quiet >= 2;
  }, timeoutMs, 20);
  return { consumedAt, settledAt };
}

/** How many of the (sorted) revisions are ≤ r. */
function countUpTo(sorted: Float64Array, r: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= r) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function slope(ts: number[], ys: number[]): number {
  const n = ts.length;
  if (n < 2) return 0;
  const tm = ts.reduce((a, b) => a + b, 0) / n;
  const ym = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (ts[i]! - tm) * (ys[i]! - ym);
    den += (ts[i]! - tm) ** 2;
  }
  return den > 0 ? num / den : 0;
}

export interface SaturationStep {
  pass: 'alone' | 'with follower';
  offered: number;
  accepted: number;
  acceptedPerSecond: number;
  putLatency: { p50: number; p99: number };
  errors: number;
  /** Shares of a core during the step. */
  cpu: CpuShares;
  /** CPU µs per accepted event, from the first put until drained, idle subtracted. */
  usPerEvent: { leader: number; follower: number; etcd: number; harness: number };
  behindMax: number;
  followerBehindMax: number;
  depthMax: number;
  depthP99: number;
  depthSlopePerSecond: number;
  depthBounded: boolean;
  processedRatio1s: number;
  drainMs: number;
  followerCatchUpMs: number;
  adds: number;
  transitions: number;
  reconciles: number;
  probe: Awaited<ReturnType<WatchProbe['end']>>;
  /** etcd's dbSizeInUse growth over the step, per accepted put (no compaction: every revision kept). */
  dbBytesPerEvent: number;
  saturated: string[];
  loadBound: boolean;
  /** Other processes' share of a core just before the step (NaN when not waited for). */
  othersBefore: number;
}

async function idleShares(pids: Record<string, number | undefined>, ms: number): Promise<CpuShares> {
  const w = cpuWindow(pids);
  await sleep(ms);
  return w.end();
}

export interface Backlog {
  puts: number;
  writeRate: number;
  consumedMs: number;
  consumedPerSecond: number;
  drainedMs: number;
  drainedPerSecond: number;
  cpu: CpuShares;
  usPerEvent: number;
  transitions: number;
  reconciles: number;
}

/**
 * statemanager's own ceiling, without the load generator competing for the CPU: stop the leader
 * (SIGSTOP), write puts as fast as etcd takes them for a few seconds (short of etcd's 20 s gRPC
 * keepalive timeout), resume it (SIGCONT) and time how fast it consumes and applies the backlog.
 * Backlogged events arrive in large watch batches and coalesce in the queue, so this is an upper
 * bound on the paced rate it could sustain.
 */
async function catchUp(sm: StateManagerProcess, s: Sampler, puts: PacedPuts, etcd: number | undefined, idle: Record<string, number>): Promise<Backlog> {
  log('saturation: backlog: leader stopped, writing for 4 s');
  s.stop();
  await sleep(300);
  const m0 = await sm.scrape();
  process.kill(sm.pid, 'SIGSTOP');
  let res: Awaited<ReturnType<PacedPuts['run']>>;
  try {
    res = await puts.run(100_000, 4, 256);
  } finally {
    process.kill(sm.pid, 'SIGCONT');
  }
  const t0 = monoMs();
  const w = cpuWindow({ statemanager: sm.pid, etcd });
  let lastRev = 0;
  for (const r of res.rev) if (r > lastRev) lastRev = r;
  const { consumedAt, settledAt: drainedAt } = await waitSettled(sm, lastRev, 120_000);
  const cpu = w.end();
  const m1 = await sm.scrape();
  s.start();
  const duration = (res.t1 - res.t0) / 1000;
  return {
    puts: res.puts,
    writeRate: res.puts / duration,
    consumedMs: consumedAt - t0,
    consumedPerSecond: res.puts / ((consumedAt - t0) / 1000),
    drainedMs: drainedAt - t0,
    drainedPerSecond: res.puts / ((drainedAt - t0) / 1000),
    cpu,
    usPerEvent: ((((cpu.statemanager ?? NaN) - (idle.statemanager ?? 0)) * cpu.seconds) / res.puts) * 1e6,
    transitions: metricSum(m1, 'statemanager_state_transitions_total') - metricSum(m0, 'statemanager_state_transitions_total'),
    reconciles: metricSum(m1, 'controller_runtime_reconcile_total') - metricSum(m0, 'controller_runtime_reconcile_total'),
  };
}

export async function saturation(ctx: Ctx): Promise<ScenarioResult> {
  const rates = (process.env.BENCH_SAT_RATES ?? '1000,2000,4000,8000').split(',').map((r) => Number(r.trim())).filter((r) => r > 0);
  const seconds = Number(process.env.BENCH_SAT_SECONDS ?? '5');
  const withFollower = process.env.BENCH_SAT_FOLLOWER !== '0';
  const quietMs = Number(process.env.BENCH_SAT_QUIET_MS ?? '30000');
  let env: Env | undefined;
  let sm: StateManagerProcess | undefined;
  let follower: Follower | undefined;
  let probe: WatchProbe | undefined;
  let holder: ReturnType<Env['client']['lease']> | undefined;
  let sampler: Sampler | undefined;
  try {
    env = await freshEtcd(ctx);
    const conv = await startAndConverge(ctx, env, 'saturation');
    sm = conv.sm;
    if (!conv.converged) throw new Error(`statemanager did not converge (${conv.remaining} wrong)`);
    // The leader key, held by the harness: a follower started later stays a follower.
    holder = env.client.lease(30);
    await holder.put('/statemanager/leader').value('bench-saturation-holder');
    const etcd = etcdPid(env.etcd.dataDir);
    const puts = new PacedPuts(env, ctx.fleet);
    probe = new WatchProbe(env);
    const rev0 = Number((await env.client.kv.range({ key: Buffer.from('\0'), limit: 1, count_only: true })).header.revision);
    await probe.start(rev0 + 1);
    const steps: SaturationStep[] = [];
    const s = (sampler = new Sampler(sm, 250));
    s.start();
    // V8 runs a few GCs after the cold start's burst: let them pass, then measure idle CPU with
    // the sampler's scrapes and the probe's puts going, as they do during the steps.
    await sleep(5000);
    probe.begin();
    const idleAlone = await idleShares({ statemanager: sm.pid, etcd }, 3000);
    await probe.end();
    log(`saturation: idle CPU ${formatShares(idleAlone)}`);
    let idle: Record<string, number> = { statemanager: idleAlone.statemanager ?? 0, etcd: idleAlone.etcd ?? 0, follower: 0 };

    const runPass = async (pass: SaturationStep['pass']): Promise<void> => {
      for (const rate of rates) {
        log(`saturation (${pass}): ${fmt.n(rate)} puts/s for ${seconds} s`);
        const pids = { statemanager: sm!.pid, etcd, ...(follower ? { follower: follower.pid } : {}) };
        // Other work on the machine distorts every share: wait (bounded) for it to go.
        const quiet = await waitQuiet(pids, quietMs);
        const m0 = await sm!.scrape();
        const db0 = Number((await env!.client.maintenance.status()).dbSizeInUse);
        const followerSamples: { t: number; rev: number }[] = [];
        const fTimer = follower
          ? setInterval(() => {
              const t = monoMs();
              follower!.revision().then((rev) => followerSamples.push({ t, rev }), () => undefined);
            }, 250)
          : undefined;
        const wAll = cpuWindow(pids);
        const wStep = cpuWindow(pids);
        probe!.begin();
        const res = await puts.run(rate, seconds);
        const cpu = wStep.end();
        let lastRev = 0;
        for (const r of res.rev) if (r > lastRev) lastRev = r;
        // The follower is timed in parallel with the leader's drain.
        let followerAt = NaN;
        const followerCaughtUp = follower
          ? waitFor(async () => {
              const r = await follower!.revision().catch(() => 0);
              if (r >= lastRev) followerAt = monoMs();
              return r >= lastRev;
            }, 60_000, 20)
          : Promise.resolve(true);
        const { settledAt: drainedAt } = await waitSettled(sm!, lastRev, 60_000);
        await followerCaughtUp;
        const probed = await probe!.end();
        // A sample taken at least 1 s after the last put, for processed / accepted at that moment.
        await waitFor(async () => {
          if (monoMs() >= res.t1 + 1000) await s.tick();
          return s.samples.some((x) => x.t >= res.t1 + 1000);
        }, 5000, 50);
        const all = wAll.end();
        clearInterval(fTimer);
        const m1 = await sm!.scrape();
        const db1 = Number((await env!.client.maintenance.status()).dbSizeInUse);

        const sortedRevs = Float64Array.from(res.rev).sort();
        const ackSorted = Float64Array.from(res.ackT).sort();
        const during = s.samples.filter((x) => x.t >= res.t0 && x.t <= res.t1);
        const at = (t: number): Sample | undefined => s.samples.find((x) => x.t >= t);
        const processed1s = countUpTo(sortedRevs, at(res.t1 + 1000)?.containersRevision ?? 0);
        const behind = during.map((x) => countUpTo(ackSorted, x.t) - countUpTo(sortedRevs, x.containersRevision));
        const fBehind = followerSamples.filter((x) => x.t >= res.t0 && x.t <= res.t1).map((x) => countUpTo(ackSorted, x.t) - countUpTo(sortedRevs, x.rev));
        const depth = during.map((x) => x.depth.model + x.depth.package + x.depth.request);
        const dSlope = slope(
          during.map((x) => (x.t - res.t0) / 1000),
          depth,
        );
        const duration = (res.t1 - res.t0) / 1000;
        const depthBounded = dSlope * duration <= Math.max(100, 0.25 * Math.max(0, ...depth));
        const us = (k: string): number => {
          const share = all[k];
          if (share === undefined || !Number.isFinite(share) || res.puts === 0) return NaN;
          return (((share - (idle[k] ?? 0)) * all.seconds) / res.puts) * 1e6;
        };
        const lat = summary(res.latency);
        const step: SaturationStep = {
          pass,
          offered: rate,
          accepted: res.puts,
          acceptedPerSecond: res.puts / duration,
          putLatency: { p50: lat.p50, p99: lat.p99 },
          errors: res.errors,
          cpu,
          usPerEvent: { leader: us('statemanager'), follower: us('follower'), etcd: us('etcd'), harness: ((all.harness ?? NaN) * all.seconds * 1e6) / res.puts },
          behindMax: Math.max(0, ...behind),
          followerBehindMax: Math.max(0, ...fBehind),
          depthMax: Math.max(0, ...depth),
          depthP99: percentile(depth, 99),
          depthSlopePerSecond: dSlope,
          depthBounded,
          processedRatio1s: res.puts > 0 ? processed1s / res.puts : NaN,
          drainMs: drainedAt - res.t1,
          followerCatchUpMs: followerAt - res.t1,
          adds: metricSum(m1, 'workqueue_adds_total') - metricSum(m0, 'workqueue_adds_total'),
          transitions: metricSum(m1, 'statemanager_state_transitions_total') - metricSum(m0, 'statemanager_state_transitions_total'),
          reconciles: metricSum(m1, 'controller_runtime_reconcile_total') - metricSum(m0, 'controller_runtime_reconcile_total'),
          probe: probed,
          dbBytesPerEvent: res.puts > 0 ? (db1 - db0) / res.puts : NaN,
          saturated: [],
          loadBound: res.puts / duration < 0.9 * rate,
          othersBefore: quiet.others,
        };
        if (!depthBounded) step.saturated.push('queue grows');
        if (step.processedRatio1s < 1) step.saturated.push('processed/accepted < 1 after 1 s');
        if ((cpu.statemanager ?? 0) >= 0.9) step.saturated.push('leader ≥ 90 % of a core');
        steps.push(step);
        await sleep(1000);
      }
    };

    await runPass('alone');
    const backlog = process.env.BENCH_SAT_BACKLOG === '0' ? undefined : await catchUp(sm, s, puts, etcd, idle);
    if (withFollower) {
      follower = new Follower(ctx, env);
      await follower.start();
      await sleep(5000);
      const fTimer = setInterval(() => void follower!.revision().catch(() => undefined), 250);
      probe.begin();
      const idleF = await idleShares({ statemanager: sm.pid, etcd, follower: follower.pid }, 3000);
      await probe.end();
      clearInterval(fTimer);
      idle = { statemanager: idleF.statemanager ?? 0, etcd: idleF.etcd ?? 0, follower: idleF.follower ?? 0 };
      log(`saturation: idle CPU with follower: ${formatShares(idleF)}`);
      await runPass('with follower');
    }
    s.stop();
    await sleep(1000);
    const check = await verify(env.client);

    const table: [string, string][] = [];
    for (const x of steps) {
      table.push([
        `${x.pass}: ${fmt.n(x.offered)}/s offered`,
        `${fmt.n(x.acceptedPerSecond)}/s accepted (put p50 ${fmt.ms(x.putLatency.p50)}, p99 ${fmt.ms(x.putLatency.p99)}); ` +
          `leader ${fmt.pct(x.cpu.statemanager ?? NaN)} of a core = ${fmt.n(x.usPerEvent.leader)} µs/event` +
          `${x.pass === 'with follower' ? `, follower ${fmt.pct(x.cpu.follower ?? NaN)} = ${fmt.n(x.usPerEvent.follower)} µs/event` : ''}` +
          `, etcd ${fmt.pct(x.cpu.etcd ?? NaN)} = ${fmt.n(x.usPerEvent.etcd)} µs/event, harness ${fmt.pct(x.cpu.harness ?? NaN)} (machine ${fmt.pct(x.cpu.machine / 2)} of 2 cores, others ${fmt.pct(x.cpu.others)}); ` +
          `behind max ${fmt.n(x.behindMax)}${x.pass === 'with follower' ? ` (follower ${fmt.n(x.followerBehindMax)})` : ''}, depth max ${x.depthMax} trend ${x.depthSlopePerSecond.toFixed(1)}/s, ` +
          `processed/accepted ${x.processedRatio1s.toFixed(4)}, drained ${fmt.ms(x.drainMs)}; ${fmt.n(x.transitions)} transitions, ${fmt.n(x.reconciles)} reconciles; ` +
          `watch after ack p50 ${fmt.ms(x.probe.watchAfterAck.p50)} p99 ${fmt.ms(x.probe.watchAfterAck.p99)}; etcd +${fmt.n(x.dbBytesPerEvent)} bytes in use per put` +
          `${x.saturated.length ? ` — SATURATED: ${x.saturated.join(', ')}` : ''}${x.loadBound ? ' — load-bound (accepted < 90 % of offered)' : ''}`,
      ]);
    }
    const firstSat = (pass: SaturationStep['pass']): SaturationStep | undefined => steps.find((x) => x.pass === pass && x.saturated.length > 0);
    const firstLoad = (pass: SaturationStep['pass']): SaturationStep | undefined => steps.find((x) => x.pass === pass && x.loadBound);
    for (const pass of ['alone', 'with follower'] as const) {
      if (!steps.some((x) => x.pass === pass)) continue;
      const sat = firstSat(pass);
      const load = firstLoad(pass);
      table.push([
        `${pass}: saturation point`,
        sat ? `${fmt.n(sat.offered)}/s offered (${fmt.n(sat.acceptedPerSecond)}/s accepted): ${sat.saturated.join(', ')}` : 'none within the steps',
      ]);
      table.push([`${pass}: load side`, load ? `first missed the offered rate at ${fmt.n(load.offered)}/s (${fmt.n(load.acceptedPerSecond)}/s accepted)` : 'kept up at every step']);
    }
    if (backlog) {
      table.push([
        'backlog: leader stopped, then resumed',
        `${fmt.n(backlog.puts)} puts written while stopped (${fmt.n(backlog.writeRate)}/s); consumed by the informer in ${fmt.ms(backlog.consumedMs)} = ${fmt.n(backlog.consumedPerSecond)} events/s, ` +
          `queues empty after ${fmt.ms(backlog.drainedMs)} = ${fmt.n(backlog.drainedPerSecond)} events/s; leader ${fmt.pct(backlog.cpu.statemanager ?? NaN)} of a core = ${fmt.n(backlog.usPerEvent)} µs/event, ` +
          `etcd ${fmt.pct(backlog.cpu.etcd ?? NaN)}; ${fmt.n(backlog.transitions)} transitions, ${fmt.n(backlog.reconciles)} reconciles`,
      ]);
    }
    table.push(['correctness', check.ok ? `ok (${check.checked.models} models, ${check.checked.packages} packages)` : `FAILED: ${check.mismatchCount} wrong`]);
    const targets: Target[] = [];
    return {
      name: 'saturation',
      figures: { rates, seconds, idle, steps, backlog, fleet: ctx.fleet.shape },
      table,
      targets,
      correctness: { ok: check.ok, detail: check.mismatches },
    };
  } finally {
    sampler?.stop();
    await probe?.stop();
    await follower?.stop();
    await holder?.revoke().catch(() => undefined);
    await sm?.stop();
    await closeEnv(env);
  }
}
