// The regression gate (issue 22, item 6): a quick run's ratio figures against the baseline
// committed in test/bench/regression-baseline.json. A figure fails when it is worse than its
// baseline by more than its tolerance, which comes from the spread of repeated quick runs on
// this machine (docs/performance.md, "Regression gate"). The baseline changes only in a commit
// that says why: `npm run bench -- --quick --update-baseline` rewrites the values from that run
// and keeps the tolerances; `npx tsx test/bench/lib/regression.ts derive FILE.json…` derives
// values (medians) and tolerances from several saved runs.
import { readFileSync, writeFileSync } from 'node:fs';
import type { ScenarioResult } from './context.js';

export type Direction = 'lower' | 'higher';

export interface FigureDef {
  key: string;
  label: string;
  /** Which way is better. */
  better: Direction;
  unit: string;
  get(f: Record<string, Record<string, unknown> | undefined>): number | undefined;
}

interface LatencyRate {
  rate: number;
  endToEnd: { p99: number };
  floor: { p99: number };
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function latencyRatio(f: Record<string, Record<string, unknown> | undefined>, rate: number): number | undefined {
  const rates = f.latency?.rates as LatencyRate[] | undefined;
  const x = rates?.find((r) => r.rate === rate);
  return x && x.floor.p99 > 0 ? num(x.endToEnd.p99 / x.floor.p99) : undefined;
}

/** The figures the gate compares: ratios to etcd's floor measured in the same run, memory, footprint. */
export const FIGURES: FigureDef[] = [
  { key: 'latencyVsFloor100', label: 'latency p99 ÷ etcd floor p99 at 100/s', better: 'lower', unit: '×', get: (f) => latencyRatio(f, 100) },
  { key: 'latencyVsFloor1000', label: 'latency p99 ÷ etcd floor p99 at 1,000/s', better: 'lower', unit: '×', get: (f) => latencyRatio(f, 1000) },
  {
    key: 'coldstartWritesVsFloor',
    label: 'cold start: state writes/s ÷ etcd floor',
    better: 'higher',
    unit: '',
    get: (f) => num((f.coldstart?.vsFloor as { share?: number } | undefined)?.share),
  },
  {
    key: 'stormVsCeiling',
    label: "storm: etcd's accepted puts/s with statemanager ÷ alone",
    better: 'higher',
    unit: '',
    get: (f) => {
      const ceiling = num(f.ceiling?.ceiling);
      const storm = num(f.storm?.acceptedPerSecond);
      return ceiling && storm !== undefined ? storm / ceiling : undefined;
    },
  },
  { key: 'heapPerContainer', label: 'memory per container (heap data)', better: 'lower', unit: 'B', get: (f) => num((f.fleetscale?.perContainer as { heap?: number } | undefined)?.heap) },
  { key: 'heapPerModel', label: 'memory per model (heap data)', better: 'lower', unit: 'B', get: (f) => num((f.fleetscale?.perModel as { heap?: number } | undefined)?.heap) },
  {
    key: 'footprintRssMB',
    label: 'footprint, one vehicle: idle RSS',
    better: 'lower',
    unit: 'MB',
    get: (f) => {
      const b = num((f.footprint?.statemanager as { rssBytes?: number } | undefined)?.rssBytes);
      return b === undefined ? undefined : b / 1048576;
    },
  },
  {
    key: 'footprintHeapMB',
    label: 'footprint, one vehicle: idle heap used',
    better: 'lower',
    unit: 'MB',
    get: (f) => {
      const b = num((f.footprint?.statemanager as { heapUsedBytes?: number } | undefined)?.heapUsedBytes);
      return b === undefined ? undefined : b / 1048576;
    },
  },
  {
    key: 'footprintReadyVsDepsLoad',
    label: 'footprint, one vehicle: ready ÷ loading the dependencies alone',
    better: 'lower',
    unit: '×',
    get: (f) => {
      const ready = num(f.footprint?.readyMedianMs);
      const load = num((f.footprint?.deps as { loadMs?: number } | undefined)?.loadMs);
      return ready !== undefined && load ? ready / load : undefined;
    },
  },
];

export interface BaselineEntry {
  label: string;
  better: Direction;
  unit: string;
  /** The figure the gate compares with. */
  value: number;
  /**
   * Relative tolerance: a figure that should be lower fails above value × (1 + tolerance); one
   * that should be higher fails below value ÷ (1 + tolerance).
   */
  tolerance: number;
  /** The runs the tolerance came from (values in run order). */
  spread?: number[];
}

export interface Baseline {
  kind: 'quick';
  why: string;
  node: string;
  updatedAt: string;
  figures: Record<string, BaselineEntry>;
}

export const BASELINE_FILE = 'test/bench/regression-baseline.json';

/** Never tighter than this, whatever the spread said. */
const MIN_TOLERANCE = 0.15;
/** The largest run-to-run ratio seen, times this margin, is the tolerance. */
const MARGIN = 1.5;

export function figuresOf(results: Pick<ScenarioResult, 'name' | 'figures'>[]): Record<string, number> {
  const byName: Record<string, Record<string, unknown> | undefined> = {};
  for (const r of results) byName[r.name] = r.figures;
  const out: Record<string, number> = {};
  for (const d of FIGURES) {
    const v = d.get(byName);
    if (v !== undefined) out[d.key] = v;
  }
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Values (medians) and tolerances from repeated runs: the widest max ÷ min, with a margin. */
export function derive(runs: Record<string, number>[]): Record<string, BaselineEntry> {
  const out: Record<string, BaselineEntry> = {};
  for (const d of FIGURES) {
    const vs = runs.map((r) => r[d.key]).filter((v): v is number => v !== undefined && v > 0);
    if (vs.length < 2) continue;
    const spreadRatio = Math.max(...vs) / Math.min(...vs) - 1;
    out[d.key] = { label: d.label, better: d.better, unit: d.unit, value: median(vs), tolerance: round(Math.max(MIN_TOLERANCE, spreadRatio * MARGIN), 2), spread: vs.map((v) => round(v, 3)) };
  }
  return out;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export interface Verdict {
  key: string;
  label: string;
  value: number | undefined;
  baseline: number;
  limit: number;
  worse: boolean;
  text: string;
}

export function limitOf(e: BaselineEntry): number {
  return e.better === 'lower' ? e.value * (1 + e.tolerance) : e.value / (1 + e.tolerance);
}

/** Every baseline figure against this run's; a figure the run did not measure is not judged. */
export function compare(baseline: Baseline, figures: Record<string, number>): Verdict[] {
  const fmt = (v: number, unit: string): string => `${v < 10 ? v.toFixed(3) : v.toFixed(1)}${unit === '×' ? '×' : unit ? ` ${unit}` : ''}`;
  return Object.entries(baseline.figures).map(([key, e]) => {
    const value = figures[key];
    const limit = limitOf(e);
    const worse = value !== undefined && (e.better === 'lower' ? value > limit : value < limit);
    const text =
      value === undefined
        ? `not measured in this run (baseline ${fmt(e.value, e.unit)})`
        : `${fmt(value, e.unit)} against baseline ${fmt(e.value, e.unit)} (${e.better} is better; fails ${e.better === 'lower' ? 'above' : 'below'} ${fmt(limit, e.unit)}, tolerance ${Math.round(e.tolerance * 100)} %)`;
    return { key, label: e.label, value, baseline: e.value, limit, worse, text };
  });
}

export function readBaseline(file: string): Baseline | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Baseline;
  } catch {
    return undefined;
  }
}

/** New values from this run; tolerances and spreads kept from the file (derived separately). */
export function updatedBaseline(old: Baseline | undefined, figures: Record<string, number>, node: string, why: string): Baseline {
  const out: Baseline = { kind: 'quick', why, node, updatedAt: new Date().toISOString(), figures: {} };
  for (const d of FIGURES) {
    const v = figures[d.key];
    const prev = old?.figures[d.key];
    if (v === undefined) {
      if (prev) out.figures[d.key] = prev;
      continue;
    }
    out.figures[d.key] = { label: d.label, better: d.better, unit: d.unit, value: round(v, 4), tolerance: prev?.tolerance ?? 0.5, ...(prev?.spread ? { spread: prev.spread } : {}) };
  }
  return out;
}

// `npx tsx test/bench/lib/regression.ts derive [--write --why TEXT] quick-*.json`: the figures of
// each run, their spread, and the tolerances they give (written to the baseline with --write).
if (process.argv[1]?.endsWith('regression.ts') && process.argv[2] === 'derive') {
  const args = process.argv.slice(3);
  const write = args.includes('--write');
  const whyAt = args.indexOf('--why');
  const why = whyAt >= 0 ? args[whyAt + 1]! : 'derived from repeated quick runs';
  const files = args.filter((a, i) => a.endsWith('.json') && (whyAt < 0 || i !== whyAt + 1));
  const runs = files.map((f) => {
    const run = JSON.parse(readFileSync(f, 'utf8')) as { results: ScenarioResult[]; machine: { node: string } };
    return { node: run.machine.node, figures: figuresOf(run.results) };
  });
  for (const d of FIGURES) process.stdout.write(`${d.label.padEnd(64)} ${runs.map((r) => (r.figures[d.key] ?? NaN).toFixed(3)).join('  ')}\n`);
  const derived = derive(runs.map((r) => r.figures));
  for (const [k, e] of Object.entries(derived)) process.stdout.write(`${k.padEnd(26)} median ${e.value.toFixed(3)}  max/min ${(Math.max(...e.spread!) / Math.min(...e.spread!)).toFixed(2)}  tolerance ${Math.round(e.tolerance * 100)} %\n`);
  if (write) {
    const b: Baseline = { kind: 'quick', why, node: runs[0]?.node ?? process.version, updatedAt: new Date().toISOString(), figures: derived };
    writeFileSync(BASELINE_FILE, JSON.stringify(b, null, 2) + '\n');
    process.stdout.write(`written: ${BASELINE_FILE}\n`);
  }
}
