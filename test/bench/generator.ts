// The load generator: a separate process acting as the fleet's node agents, writing
// /container/{node}/{id} keys with the etcd3 client over loopback. Driven by the harness over
// IPC, one command at a time; every loop is bounded in count and time, and the process exits
// by itself when the harness goes away.
import { Etcd3 } from 'etcd3';
import { monoMs, rng, sleep, summary } from './lib/common.js';
import { Fleet, STATUS_INDEX, type FleetShape } from './lib/fleet.js';

export type GeneratorCommand =
  | { cmd: 'ceiling'; levels: number[]; seconds: number }
  | { cmd: 'storm'; concurrency: number; seconds: number; maxPuts: number }
  | { cmd: 'rate'; rate: number; seconds: number }
  | { cmd: 'changes'; fraction: number; concurrency: number }
  | { cmd: 'exit' };

export interface CeilingLevel {
  concurrency: number;
  puts: number;
  errors: number;
  seconds: number;
  rate: number;
  latencyP50: number;
  latencyP99: number;
}

export interface StormResult {
  puts: number;
  errors: number;
  /** Monotonic ms when the first put was sent and the last acknowledged. */
  t0: number;
  t1: number;
  ackT: Float64Array;
  rev: Float64Array;
  container: Int32Array;
  status: Uint8Array;
}

export interface RateResult {
  puts: number;
  errors: number;
  t0: number;
  t1: number;
  achievedRate: number;
  ackT: Float64Array;
  sentT: Float64Array;
  rev: Float64Array;
  pkg: Int32Array;
  /** 1: the put should make the package Degraded; 0: Running. */
  toDead: Uint8Array;
}

export interface ChangesResult {
  puts: number;
  errors: number;
  lastRev: number;
  seconds: number;
}

const endpoint = process.env.BENCH_ETCD!;
const shape = JSON.parse(process.env.BENCH_FLEET!) as FleetShape;
const fleet = new Fleet(shape);
const client = new Etcd3({ hosts: endpoint });
const status = Uint8Array.from(fleet.initial);
const generation = new Uint32Array(fleet.containers);
const random = rng(shape.seed * 7919 + 17);

// Storm mix of new raw statuses (never 'created': storms are about running containers).
const MIX: [number, number][] = [
  [STATUS_INDEX.running, 40],
  [STATUS_INDEX.restarting, 10],
  [STATUS_INDEX.paused, 15],
  [STATUS_INDEX.exited, 20],
  [STATUS_INDEX.dead, 15],
];
const MIX_TOTAL = MIX.reduce((a, [, w]) => a + w, 0);

function nextStatus(current: number): number {
  for (let i = 0; i < 16; i++) {
    let r = random() * MIX_TOTAL;
    for (const [s, w] of MIX) {
      r -= w;
      if (r < 0) {
        if (s !== current) return s;
        break;
      }
    }
  }
  return current === STATUS_INDEX.running ? STATUS_INDEX.exited : STATUS_INDEX.running;
}

async function put(c: number, s: number): Promise<number> {
  status[c] = s;
  generation[c]!++;
  const res = await client.kv.put({ key: Buffer.from(fleet.containerKey(c)), value: Buffer.from(fleet.containerValue(c, s, generation[c])) });
  return Number(res.header.revision);
}

/** Random status changes on random containers, `concurrency` in flight, bounded in time and count. */
async function storm(concurrency: number, seconds: number, maxPuts: number): Promise<StormResult> {
  const ackT = new Float64Array(maxPuts);
  const rev = new Float64Array(maxPuts);
  const container = new Int32Array(maxPuts);
  const st = new Uint8Array(maxPuts);
  let n = 0;
  let errors = 0;
  const t0 = monoMs();
  const end = t0 + seconds * 1000;
  const busy = new Set<number>();
  const worker = async (): Promise<void> => {
    while (monoMs() < end && n < maxPuts && errors < 1000) {
      let c = Math.floor(random() * fleet.containers);
      // Never two puts of one key in flight: their order would be undefined.
      for (let tries = 0; busy.has(c) && tries < 100; tries++) c = Math.floor(random() * fleet.containers);
      if (busy.has(c)) continue;
      busy.add(c);
      const s = nextStatus(status[c]!);
      try {
        const r = await put(c, s);
        const i = n++;
        if (i < maxPuts) {
          ackT[i] = monoMs();
          rev[i] = r;
          container[i] = c;
          st[i] = s;
        }
      } catch {
        errors++;
      } finally {
        busy.delete(c);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const puts = Math.min(n, maxPuts);
  return {
    puts,
    errors,
    t0,
    t1: puts > 0 ? ackT[puts - 1]! : t0,
    ackT: ackT.slice(0, puts),
    rev: rev.slice(0, puts),
    container: container.slice(0, puts),
    status: st.slice(0, puts),
  };
}

async function ceiling(levels: number[], seconds: number): Promise<CeilingLevel[]> {
  const out: CeilingLevel[] = [];
  for (const concurrency of levels) {
    const lat: number[] = [];
    let n = 0;
    let errors = 0;
    const t0 = monoMs();
    const end = t0 + seconds * 1000;
    const busy = new Set<number>();
    const worker = async (): Promise<void> => {
      while (monoMs() < end && n < 10_000_000 && errors < 1000) {
        const c = Math.floor(random() * fleet.containers);
        if (busy.has(c)) continue;
        busy.add(c);
        const s = nextStatus(status[c]!);
        const a = monoMs();
        try {
          await put(c, s);
          n++;
          if (lat.length < 200_000) lat.push(monoMs() - a);
        } catch {
          errors++;
        } finally {
          busy.delete(c);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsed = (monoMs() - t0) / 1000;
    const s = summary(lat);
    out.push({ concurrency, puts: n, errors, seconds: elapsed, rate: n / elapsed, latencyP50: s.p50, latencyP99: s.p99 });
    await sleep(200);
  }
  return out;
}

/**
 * Puts at a fixed rate, each flipping one package: the first container of a 'running' package
 * goes dead (package → Degraded) or back to running (→ Running), packages taken round robin.
 */
async function rate(perSecond: number, seconds: number): Promise<RateResult> {
  const targets = fleet.latencyTargets();
  if (targets.length === 0) throw new Error('fleet has no latency targets');
  const total = Math.max(1, Math.round(perSecond * seconds));
  const ackT = new Float64Array(total);
  const sentT = new Float64Array(total);
  const rev = new Float64Array(total);
  const pkg = new Int32Array(total);
  const toDead = new Uint8Array(total);
  let issued = 0;
  let done = 0;
  let inFlight = 0;
  let errors = 0;
  let next = 0;
  const t0 = monoMs();
  const hardEnd = t0 + seconds * 1000 + 30_000;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = monoMs();
      const due = Math.min(total, Math.floor(((now - t0) * perSecond) / 1000) + 1);
      while (issued < due && inFlight < 2000) {
        const i = issued++;
        const t = targets[next++ % targets.length]!;
        const dead = status[t.container] !== STATUS_INDEX.dead;
        pkg[i] = t.pkg;
        toDead[i] = dead ? 1 : 0;
        sentT[i] = monoMs();
        inFlight++;
        put(t.container, dead ? STATUS_INDEX.dead : STATUS_INDEX.running).then(
          (r) => {
            ackT[i] = monoMs();
            rev[i] = r;
          },
          () => {
            errors++;
            rev[i] = -1;
          },
        ).finally(() => {
          inFlight--;
          done++;
          if (done === total) resolve();
        });
      }
      if (done < total && monoMs() < hardEnd) setTimeout(tick, 1);
      else if (done < total) resolve();
    };
    tick();
  });
  const t1 = monoMs();
  return { puts: done, errors, t0, t1, achievedRate: done / ((t1 - t0) / 1000), ackT, sentT, rev, pkg, toDead };
}

/** Change `fraction` of all containers (a random set) to another status, as fast as possible. */
async function changes(fraction: number, concurrency: number): Promise<ChangesResult> {
  const count = Math.min(fleet.containers, Math.round(fleet.containers * fraction));
  const order = Int32Array.from({ length: fleet.containers }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (fleet.containers - i));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  let next = 0;
  let errors = 0;
  let lastRev = 0;
  const t0 = monoMs();
  const worker = async (): Promise<void> => {
    while (next < count && errors < 1000) {
      const c = order[next++]!;
      try {
        lastRev = Math.max(lastRev, await put(c, nextStatus(status[c]!)));
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { puts: count - errors, errors, lastRev, seconds: (monoMs() - t0) / 1000 };
}

async function handle(msg: GeneratorCommand): Promise<unknown> {
  switch (msg.cmd) {
    case 'ceiling':
      return ceiling(msg.levels, msg.seconds);
    case 'storm':
      return storm(msg.concurrency, msg.seconds, msg.maxPuts);
    case 'rate':
      return rate(msg.rate, msg.seconds);
    case 'changes':
      return changes(msg.fraction, msg.concurrency);
    case 'exit':
      client.close();
      setTimeout(() => process.exit(0), 10);
      return 'bye';
  }
}

process.on('disconnect', () => process.exit(0));
process.on('message', (msg: GeneratorCommand) => {
  handle(msg).then(
    (result) => process.send?.({ ok: true, result }),
    (err: unknown) => process.send?.({ ok: false, error: err instanceof Error ? err.stack : String(err) }),
  );
});
process.send?.({ ok: true, result: 'ready' });
