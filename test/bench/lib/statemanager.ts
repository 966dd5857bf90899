// statemanager as a separate process — the real entry point (node dist/src/main.js) — with its
// probes, its /metrics, and its CPU and memory from /proc.
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../helpers/etcd.js';
import { monoMs, sleep } from './common.js';
import { spawnTracked, stopChild } from './procs.js';

export interface StateManagerOptions {
  root: string;
  etcdEndpoint: string;
  actionControllerAddr: string;
  workDir: string;
  /** Written to the configuration file as is (YAML). */
  extraConfig?: string;
  /** Write a V8 CPU profile into workDir. */
  cpuProf?: boolean;
  /** Node flags for this process only, after BENCH_SM_NODE_ARGS (e.g. GC_ON_SIGNAL). */
  nodeArgs?: string[];
  label: string;
}

export interface ProcSample {
  /** user + system CPU seconds so far. */
  cpuSeconds: number;
  rssBytes: number;
  /** Peak RSS (VmHWM). */
  hwmBytes: number;
  /** RSS in anonymous pages (heap, stacks, malloc): the process's own memory. */
  rssAnonBytes: number;
  /** RSS in pages of mapped files (the node binary's code, shared libraries): clean, shared with every Node process. */
  rssFileBytes: number;
}

const CLK_TCK = 100;

export function procSample(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime 15.
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { cpuSeconds, rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM'), rssAnonBytes: kb('RssAnon'), rssFileBytes: kb('RssFile') };
  } catch {
    return undefined;
  }
}

export type MetricMap = Map<string, number>;

/** Prometheus text → "name{labels}" → value (labels as printed). */
export function parseMetrics(text: string): MetricMap {
  const out: MetricMap = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    if (sp < 0) continue;
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

export function metric(m: MetricMap, name: string, labels: Record<string, string> = {}): number {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  const exact = m.get(l ? `${name}{${l}}` : name);
  if (exact !== undefined) return exact;
  // Label order may differ: fall back to a scan.
  for (const [k, v] of m) {
    if (!k.startsWith(name)) continue;
    const rest = k.slice(name.length);
    if (rest !== '' && !rest.startsWith('{')) continue;
    if (Object.entries(labels).every(([lk, lv]) => rest.includes(`${lk}="${lv}"`))) return v;
  }
  return NaN;
}

/** Sum over every series of `name` matching `labels`. */
export function metricSum(m: MetricMap, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [k, v] of m) {
    if (!k.startsWith(name)) continue;
    const rest = k.slice(name.length);
    if (rest !== '' && !rest.startsWith('{')) continue;
    if (Object.entries(labels).every(([lk, lv]) => rest.includes(`${lk}="${lv}"`))) sum += v;
  }
  return sum;
}

/**
 * Node flags that make SIGUSR2 run a full garbage collection in statemanager
 * (lib/gc-on-signal.mjs): heap used right after it is what is live, which an idle process may
 * not show for many seconds otherwise. Only the fleetscale scenario's memory figures use it.
 */
export const GC_ON_SIGNAL = ['--expose-gc', `--import=${new URL('./gc-on-signal.mjs', import.meta.url).href}`];

export class StateManagerProcess {
  child: ChildProcess | undefined;
  httpPort = 0;
  startedAt = 0;
  readyAt = 0;
  exitInfo: string | undefined;

  constructor(private readonly o: StateManagerOptions) {}

  /** Written by GC_ON_SIGNAL's handler after each collection it runs (lib/gc-on-signal.mjs). */
  get gcReportFile(): string {
    return join(this.o.workDir, `gc-report-${this.o.label}.json`);
  }

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  async start(): Promise<void> {
    const { o } = this;
    mkdirSync(o.workDir, { recursive: true });
    this.httpPort = await freePort();
    const grpcPort = await freePort();
    const configFile = join(o.workDir, 'statemanager.yaml');
    writeFileSync(configFile, `leaderElection:\n  enabled: false\nlog:\n  level: warn\n${o.extraConfig ?? ''}`);
    // BENCH_SM_NODE_ARGS: extra node flags for statemanager only (e.g. --trace-gc).
    const args = (process.env.BENCH_SM_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    args.push(...(o.nodeArgs ?? []));
    // Test-only (lib/plant-regression.mjs): a planted regression the gate must catch.
    if (process.env.BENCH_PLANT_REGRESSION) args.push(`--import=${new URL('./plant-regression.mjs', import.meta.url).href}`);
    if (o.cpuProf) args.push('--cpu-prof', `--cpu-prof-dir=${o.workDir}`, `--cpu-prof-name=statemanager-${o.label}.cpuprofile`);
    args.push(join(o.root, 'dist/src/main.js'));
    const logFile = createWriteStream(join(o.workDir, `statemanager-${o.label}.log`), { flags: 'a' });
    this.exitInfo = undefined;
    this.readyAt = 0;
    this.startedAt = monoMs();
    const child = spawnTracked(process.execPath, args, {
      cwd: o.root,
      env: {
        ...process.env,
        ETCD_ENDPOINTS: o.etcdEndpoint,
        STATEMANAGER_HTTP_ADDR: `127.0.0.1:${this.httpPort}`,
        STATEMANAGER_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
        ACTION_CONTROLLER_ADDR: o.actionControllerAddr,
        STATEMANAGER_CONFIG: configFile,
        // Where GC_ON_SIGNAL's handler writes the heap it finds after its collection.
        BENCH_GC_REPORT: this.gcReportFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(logFile);
    child.stderr?.pipe(logFile);
    child.on('exit', (code, signal) => {
      this.exitInfo = `exited with ${signal ?? code}`;
    });
    this.child = child;
  }

  /** Poll /readyz every 10 ms; the time from spawn to the first 200, in ms. */
  async waitReady(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exitInfo) throw new Error(`statemanager ${this.exitInfo} before it was ready (see its log in ${this.o.workDir})`);
      try {
        const res = await fetch(`http://127.0.0.1:${this.httpPort}/readyz`);
        await res.text();
        if (res.status === 200) {
          this.readyAt = monoMs();
          return this.readyAt - this.startedAt;
        }
      } catch {
        // not listening yet
      }
      await sleep(10);
    }
    throw new Error(`statemanager not ready within ${timeoutMs} ms`);
  }

  async scrape(): Promise<MetricMap> {
    const res = await fetch(`http://127.0.0.1:${this.httpPort}/metrics`);
    return parseMetrics(await res.text());
  }

  proc(): ProcSample | undefined {
    return this.pid ? procSample(this.pid) : undefined;
  }

  /** Send a signal (SIGUSR2 runs a full GC when started with GC_ON_SIGNAL). */
  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  /** SIGTERM and wait (a clean stop writes the CPU profile). */
  async stop(): Promise<void> {
    if (this.child) await stopChild(this.child, 'SIGTERM', 30_000);
    this.child = undefined;
  }
}

export interface Sample {
  t: number;
  depth: { model: number; package: number; request: number };
  adds: number;
  containersRevision: number;
  cpuSeconds: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
}

/** Scrape /metrics and /proc every `periodMs` until stopped. */
export class Sampler {
  readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  errors = 0;

  constructor(
    private readonly sm: StateManagerProcess,
    private readonly periodMs = 250,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.periodMs);
  }

  async tick(): Promise<Sample | undefined> {
    if (this.busy) return undefined;
    this.busy = true;
    try {
      const t = monoMs();
      const m = await this.sm.scrape();
      const p = this.sm.proc();
      const s: Sample = {
        t,
        depth: {
          model: metric(m, 'workqueue_depth', { name: 'model' }),
          package: metric(m, 'workqueue_depth', { name: 'package' }),
          request: metric(m, 'workqueue_depth', { name: 'request' }),
        },
        adds: metricSum(m, 'workqueue_adds_total'),
        containersRevision: metric(m, 'statemanager_informer_last_revision', { informer: 'containers' }),
        cpuSeconds: p?.cpuSeconds ?? NaN,
        rssBytes: p?.rssBytes ?? NaN,
        heapUsedBytes: metric(m, 'nodejs_heap_size_used_bytes'),
        heapTotalBytes: metric(m, 'nodejs_heap_size_total_bytes'),
        externalBytes: metric(m, 'nodejs_external_memory_bytes'),
      };
      this.samples.push(s);
      return s;
    } catch {
      this.errors++;
      return undefined;
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Quantile from the difference of two scrapes of a Prometheus histogram (upper bucket bound). */
export function histogramQuantile(before: MetricMap, after: MetricMap, name: string, q: number): { value: number; count: number } {
  const buckets: [number, number][] = [];
  for (const [k, v] of after) {
    if (!k.startsWith(`${name}_bucket{`)) continue;
    const le = /le="([^"]+)"/.exec(k)?.[1];
    if (le === undefined) continue;
    buckets.push([le === '+Inf' ? Infinity : Number(le), v - (before.get(k) ?? 0)]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return { value: NaN, count: 0 };
  for (const [le, c] of buckets) if (c >= q * total) return { value: le, count: total };
  return { value: Infinity, count: total };
}
