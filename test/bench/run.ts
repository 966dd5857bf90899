// statemanager's performance benchmark (issue 3): `npm run bench` for the large fleet,
// `npm run bench -- --quick` for a small one in about a minute (CI). Scenarios: ceiling, storm,
// latency, coldstart, baseline, fleetscale. Each prints a table and goes into a JSON file under
// test/bench/results/. The exit code is non-zero when a correctness check fails (a state in
// etcd differs from what the rules give) or a scenario cannot run; missed performance targets
// are reported, not fatal.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startActionController } from '../helpers/action-controller.js';
import { log, monoMs } from './lib/common.js';
import { type Ctx, type RunOptions, type ScenarioResult } from './lib/context.js';
import { Fleet, LARGE_FLEET, QUICK_FLEET, type FleetShape } from './lib/fleet.js';
import { baseline } from './scenarios/baseline.js';
import { ceiling } from './scenarios/ceiling.js';
import { coldstart } from './scenarios/coldstart.js';
import { fleetscale } from './scenarios/fleetscale.js';
import { footprint } from './scenarios/footprint.js';
import { saturation } from './scenarios/saturation.js';
import { latency } from './scenarios/latency.js';
import { storm } from './scenarios/storm.js';
import { oracleSelfTest } from './lib/selftest.js';
import { markdown } from './lib/report.js';
import { BASELINE_FILE, compare, figuresOf, readBaseline, updatedBaseline } from './lib/regression.js';

const SCENARIOS: Record<string, (ctx: Ctx) => Promise<ScenarioResult>> = { ceiling, storm, latency, coldstart, baseline, fleetscale, saturation, footprint };
// Run only when named: saturation measures one leader's limit for docs/scaling.md (about 2 minutes).
const DEFAULT_SCENARIOS = ['footprint', 'ceiling', 'storm', 'latency', 'coldstart', 'baseline', 'fleetscale'];

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

function usage(): string {
  return `usage: npm run bench -- [--quick] [--only footprint,ceiling,storm,latency,coldstart,baseline,fleetscale,saturation]
  [--containers N] [--models N] [--packages N] [--nodes N] [--storm-seconds S] [--storm-concurrency N]
  [--inject-fault (pretend a state is wrong: the run must fail)]
  [--update-baseline [--why TEXT]   (quick: write this run's figures into test/bench/regression-baseline.json)]
  [--no-gate   (quick: do not compare with the regression baseline)]
  [--latency-seconds S] [--latency-rates 100,1000,half-ceiling] [--cpu-prof] [--no-build]
  [--no-relay   (latency: skip the two-hop relay floor measured after statemanager's rates)]
  [--no-storm-floor   (storm: skip the generator alone and with a do-nothing controller, on the same etcd after the storm)]
  [--sm-config 'yaml lines added to statemanager's configuration file']
  [--sm-root DIR   (benchmark the build in DIR/dist instead of this checkout's; not rebuilt)]
  [--fleet-sizes 100000,250000,500000   (fleetscale: containers per cold start; models N/2, packages N/4;
                                         quick: 3000,6000)] [--plot FILE   (fleetscale: also write the SVG here)]
  [--no-memory-runs   (fleetscale: skip the two cold starts that measure memory per container and per model)]
  [--no-client-floor   (fleetscale: skip the client floor, the cold start's I/O through statemanager's etcd code alone)]`;
}

function options(): { opts: RunOptions; only: string[]; build: boolean; gate: { update: boolean; why: string; off: boolean } } {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      containers: { type: 'string' },
      models: { type: 'string' },
      packages: { type: 'string' },
      nodes: { type: 'string' },
      'storm-seconds': { type: 'string' },
      'storm-concurrency': { type: 'string' },
      'latency-seconds': { type: 'string' },
      'no-relay': { type: 'boolean', default: false },
      'no-storm-floor': { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      'inject-fault': { type: 'boolean', default: false },
      'update-baseline': { type: 'boolean', default: false },
      why: { type: 'string' },
      'no-gate': { type: 'boolean', default: false },
      'sm-config': { type: 'string' },
      'sm-root': { type: 'string' },
      'latency-rates': { type: 'string' },
      'fleet-sizes': { type: 'string' },
      'no-memory-runs': { type: 'boolean', default: false },
      'no-client-floor': { type: 'boolean', default: false },
      plot: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(usage() + '\n');
    process.exit(0);
  }
  const quick = values.quick;
  const base = quick ? QUICK_FLEET : LARGE_FLEET;
  const num = (v: string | undefined, d: number): number => {
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`not a number: ${v}\n${usage()}`);
    return n;
  };
  const shape: FleetShape = {
    ...base,
    containers: num(values.containers, base.containers),
    models: num(values.models, base.models),
    packages: num(values.packages, base.packages),
    nodes: num(values.nodes, base.nodes),
  };
  if (values['inject-fault']) process.env.BENCH_INJECT_FAULT = '1';
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : DEFAULT_SCENARIOS;
  for (const s of only) if (!SCENARIOS[s]) throw new Error(`unknown scenario ${s}\n${usage()}`);
  return {
    only,
    build: !values['no-build'],
    gate: { update: values['update-baseline'], why: values.why ?? 'written by --update-baseline', off: values['no-gate'] },
    opts: {
      quick,
      shape,
      ceilingLevels: quick ? [1, 16, 64] : [1, 8, 32, 64, 128, 256],
      ceilingSeconds: quick ? 1 : 4,
      stormSeconds: num(values['storm-seconds'], quick ? 4 : 60),
      stormConcurrency: num(values['storm-concurrency'], 0),
      latencyRates: values['latency-rates']
        ? values['latency-rates'].split(',').map((r) => (r.trim() === 'half-ceiling' ? 'half-ceiling' : num(r.trim(), 0)))
        : quick
          ? [100, 1000, 3000, 'half-ceiling']
          : [100, 1000, 3000, 'half-ceiling'],
      latencySeconds: num(values['latency-seconds'], quick ? 1.5 : 10),
      relay: !values['no-relay'],
      stormFloor: !values['no-storm-floor'],
      restartFraction: 0.1,
      baselineStormSeconds: quick ? 0.5 : 5,
      fleetSizes: fleetSizes(values['fleet-sizes'], quick),
      fleetMemoryRuns: !values['no-memory-runs'],
      clientFloor: !values['no-client-floor'],
      fleetNodes: quick ? 10 : 50,
      ...(values.plot ? { plotFile: values.plot } : {}),
      cpuProf: values['cpu-prof'],
      smConfig: values['sm-config'] ?? '',
      smRoot: values['sm-root'] ?? root,
    },
  };
}

/** --fleet-sizes: whole container counts, at least 4 (a fleet of N has N/4 packages). */
function fleetSizes(v: string | undefined, quick: boolean): number[] {
  if (v === undefined) return quick ? [3000, 6000] : [100_000, 250_000, 500_000];
  const sizes = v.split(',').map((x) => Number(x.trim()));
  for (const n of sizes) if (!Number.isInteger(n) || n < 4) throw new Error(`--fleet-sizes: not a container count ≥ 4: ${v}\n${usage()}`);
  return sizes;
}

function machine(): Record<string, unknown> {
  const etcd = spawnSync(process.env.ETCD_BIN ?? 'etcd', ['--version'], { encoding: 'utf8' });
  const etcdVersion = /etcd Version: (\S+)/.exec(etcd.stdout ?? '')?.[1] ?? 'unknown';
  let memTotal = 'unknown';
  try {
    memTotal = /MemTotal:\s+(\d+ kB)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    // not Linux
  }
  return { cpuModel: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memTotal, etcdVersion, node: process.version, platform: `${process.platform}/${process.arch}` };
}

function build(): void {
  log('building (tsc -p tsconfig.build.json)');
  const r = spawnSync(join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) {
    // tsc still emits JavaScript on type errors; the run goes on if the entry point exists, but says so.
    process.stderr.write(r.stdout + r.stderr);
    if (!existsSync(join(root, 'dist/src/main.js'))) throw new Error('build failed and dist/src/main.js does not exist');
    log('WARNING: the build reported type errors (above); benchmarking the JavaScript it emitted anyway');
  }
}

function printTable(r: ScenarioResult): void {
  const width = Math.max(...r.table.map(([k]) => k.length), 10);
  process.stdout.write(`\n== ${r.name} ==\n`);
  for (const [k, v] of r.table) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
}

/**
 * Quick runs only: this run's ratio figures against test/bench/regression-baseline.json (lib/regression.ts);
 * a figure clearly worse than its baseline fails the run. With --update-baseline the file takes this run's figures.
 */
function regressionGate(results: ScenarioResult[], failures: string[], gate: { update: boolean; why: string }, node: string): unknown {
  const file = join(root, BASELINE_FILE);
  const figures = figuresOf(results);
  const baseline = readBaseline(file);
  process.stdout.write('\n== regression gate ==\n');
  if (gate.update) {
    writeFileSync(file, JSON.stringify(updatedBaseline(baseline, figures, node, gate.why), null, 2) + '\n');
    process.stdout.write(`  baseline written: ${BASELINE_FILE} (commit it with a message that says why)\n`);
    return { updated: true, figures };
  }
  if (!baseline) {
    process.stdout.write(`  no baseline in ${BASELINE_FILE}: nothing compared\n`);
    return { figures };
  }
  const verdicts = compare(baseline, figures);
  const w = Math.max(...verdicts.map((v) => v.label.length));
  for (const v of verdicts) process.stdout.write(`  ${v.value === undefined ? 'n/a  ' : v.worse ? 'WORSE' : 'ok   '}  ${v.label.padEnd(w)}  ${v.text}\n`);
  for (const v of verdicts) if (v.worse) failures.push(`regression: ${v.label}: ${v.text}`);
  return { figures, verdicts };
}

async function main(): Promise<number> {
  const { opts, only, build: doBuild, gate } = options();
  if (!existsSync(join(opts.smRoot, 'dist/src/main.js')) && opts.smRoot !== root) throw new Error(`no build in ${opts.smRoot}/dist`);
  const t0 = monoMs();
  // Every run stops by itself: the whole benchmark has a time limit.
  const limitMs = (opts.quick ? 5 : 90) * 60_000;
  setTimeout(() => {
    process.stderr.write(`bench: time limit of ${limitMs / 60_000} min reached, stopping\n`);
    process.exit(2);
  }, limitMs).unref();

  const selfTest = oracleSelfTest();
  if (selfTest.length > 0) throw new Error(`the correctness oracle failed its self-test: ${selfTest.join('; ')}`);
  if (doBuild && opts.smRoot === root) build();
  const mach = machine();
  const startedIso = new Date().toISOString();
  const stamp = startedIso.replace(/[:.]/g, '-');
  const resultsDir = join(root, 'test/bench/results');
  const workDir = join(resultsDir, `run-${stamp}`);
  mkdirSync(workDir, { recursive: true });
  const fleet = new Fleet(opts.shape);
  const ac = await startActionController();
  const ctx: Ctx = { root, workDir, opts, fleet, ac };
  process.stdout.write(
    `statemanager benchmark (${opts.quick ? 'quick' : 'full'}): ${fleet.containers.toLocaleString()} containers, ${fleet.models.toLocaleString()} models, ${fleet.packages.toLocaleString()} packages, ${opts.shape.nodes} nodes\n` +
      `machine: ${String(mach.cpuModel)}, ${String(mach.cores)} cores, etcd ${String(mach.etcdVersion)}, node ${String(mach.node)} — etcd, statemanager and the generator share these cores\n`,
  );
  const results: ScenarioResult[] = [];
  const failures: string[] = [];
  for (const name of only) {
    const started = monoMs();
    log(`scenario ${name}`);
    try {
      const r = await SCENARIOS[name]!(ctx);
      r.figures.wallSeconds = (monoMs() - started) / 1000;
      results.push(r);
      printTable(r);
      if (r.correctness && !r.correctness.ok) {
        failures.push(`${name}: states in etcd differ from the rules`);
        process.stdout.write(`  CORRECTNESS FAILURE:\n${r.correctness.detail.map((d) => `    ${d}`).join('\n')}\n`);
      }
    } catch (err) {
      const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
      failures.push(`${name}: ${msg.split('\n')[0]}`);
      process.stdout.write(`\n== ${name} ==\n  FAILED TO RUN: ${msg}\n`);
      results.push({ name, figures: { error: msg }, table: [], targets: [], correctness: { ok: false, detail: [msg] } });
    }
  }
  await ac.stop();

  const targets = results.flatMap((r) => r.targets);
  process.stdout.write('\n== targets ==\n');
  const tw = Math.max(...targets.map((t) => t.name.length), 10);
  for (const t of targets) {
    const mark = t.met === null ? 'n/a ' : t.met ? 'MET ' : 'MISS';
    process.stdout.write(`  ${mark}  ${t.name.padEnd(tw)}  ${t.value}  (target ${t.target})\n`);
  }
  if (opts.quick) process.stdout.write('  (quick fleet: the targets are defined for the large fleet; shown for orientation)\n');
  const regression = opts.quick && !gate.off ? regressionGate(results, failures, gate, String(mach.node)) : undefined;
  const totalSeconds = (monoMs() - t0) / 1000;
  const out = { kind: opts.quick ? 'quick' : 'full', startedAt: stamp, totalSeconds, machine: mach, options: opts, results, targets, regression, failures };
  writeFileSync(join(resultsDir, `latest-${opts.quick ? 'quick' : 'full'}.md`), markdown(out.kind, startedIso, mach, opts, results, targets, totalSeconds));
  const file = join(resultsDir, `${opts.quick ? 'quick' : 'full'}-${stamp}.json`);
  writeFileSync(file, JSON.stringify(out, null, 2));
  writeFileSync(join(resultsDir, `latest-${opts.quick ? 'quick' : 'full'}.json`), JSON.stringify(out, null, 2));
  process.stdout.write(`\nresults: ${file} (${totalSeconds.toFixed(0)} s)\n`);
  if (failures.length > 0) {
    process.stdout.write(`\nBENCH FAILED:\n${failures.map((f) => `  ${f}`).join('\n')}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
