// Results as Markdown tables (for docs/performance.md): `npx tsx test/bench/lib/report.ts FILE.json`
// renders a saved run again.
import { readFileSync } from 'node:fs';
import type { RunOptions, ScenarioResult } from './context.js';

/** The run as Markdown tables, ready for docs/performance.md. */
export function markdown(kind: string, startedAt: string, mach: Record<string, unknown>, opts: RunOptions, results: ScenarioResult[], targets: ScenarioResult['targets'], seconds: number): string {
  const esc = (v: string): string => v.replace(/\|/g, '\\|');
  const lines = [
    `Run: ${kind}, started ${startedAt.slice(0, 16).replace('T', ' ')} UTC, ${seconds.toFixed(0)} s. Machine: ${String(mach.cpuModel)}, ${String(mach.cores)} cores, ${String(mach.memTotal)}, etcd ${String(mach.etcdVersion)}, Node ${String(mach.node)}.`,
    `Fleet: ${opts.shape.containers.toLocaleString('en-US')} containers, ${opts.shape.models.toLocaleString('en-US')} models, ${opts.shape.packages.toLocaleString('en-US')} packages, ${opts.shape.nodes} nodes.` +
      (opts.smConfig ? ` Extra statemanager configuration: \`${opts.smConfig.trim().replace(/\n\s*/g, ' ')}\`.` : ' Default statemanager configuration.'),
    '',
    '| target | figure | goal | |',
    '|---|---|---|---|',
    ...targets.map((t) => `| ${esc(t.name)} | ${esc(t.value)} | ${esc(t.target)} | ${t.met === null ? 'n/a' : t.met ? 'met' : '**missed**'} |`),
  ];
  lines.push(...latencyVsFloor(results));
  for (const r of results) {
    lines.push('', `**${r.name}**`, '', '| | |', '|---|---|', ...r.table.map(([k, v]) => `| ${esc(k.trim())} | ${esc(v)} |`));
  }
  return lines.join('\n') + '\n';
}

interface Quantiles {
  p50: number;
  p99: number;
}

/**
 * Issue 22, item 2: one row per latency rate — put sent → package state watch event against put
 * sent → the put's own watch event (etcd's floor), p50 and p99, both from the same run.
 */
export function latencyVsFloor(results: ScenarioResult[]): string[] {
  const rates = results.find((r) => r.name === 'latency')?.figures.rates as
    | { rate: number; puts: number; matched: number; endToEnd: Quantiles; floor: Quantiles; putRoundTrip?: Quantiles; relay?: RelayRow; ioRelay?: RelayRow }[]
    | undefined;
  if (!rates || rates.length === 0) return [];
  const ms = (v: number): string => (Number.isFinite(v) ? `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms` : 'n/a');
  const x = (a: number, b: number): string => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : 'n/a');
  return [
    '',
    '**latency against etcd’s floor** (put sent → package state watch event; floor: put sent → the put’s own watch event; same run)',
    '',
    '| rate | p50 | floor p50 | p50 ÷ floor | p99 | floor p99 | p99 ÷ floor | put round trip p50 | p50 ÷ no-wait chain: 1 transaction (2 × floor) | 2 transactions (2 × floor + round trip) | puts matched |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rates.map((r) => {
      const rt = r.putRoundTrip?.p50 ?? NaN;
      return `| ${r.rate.toLocaleString('en-US')}/s | ${ms(r.endToEnd.p50)} | ${ms(r.floor.p50)} | ${x(r.endToEnd.p50, r.floor.p50)} | ${ms(r.endToEnd.p99)} | ${ms(r.floor.p99)} | ${x(r.endToEnd.p99, r.floor.p99)} | ${ms(rt)} | ${x(r.endToEnd.p50, 2 * r.floor.p50)} | ${x(r.endToEnd.p50, 2 * r.floor.p50 + rt)} | ${r.matched.toLocaleString('en-US')} of ${r.puts.toLocaleString('en-US')} |`;
    }),
    ...latencyVsRelay(rates, 'relay', 'the two-hop relay', 'a minimal process that puts one key per container event'),
    ...latencyVsRelay(rates, 'ioRelay', 'the relay with statemanager’s I/O', 'per container event the transaction statemanager writes for a model and its package, two guarded states with their history, and a watch on its own states'),
  ];
}

type RelayRow = { puts: number; matched: number; endToEnd: Quantiles; floor: Quantiles };

/**
 * A relay floor (test/bench/relay.ts) at the same rates: put sent → the relayed key's watch
 * event, against etcd's floor in the relay's phase, and statemanager against the relay.
 */
function latencyVsRelay(
  rates: ({ rate: number; endToEnd: Quantiles; floor: Quantiles } & { relay?: RelayRow; ioRelay?: RelayRow })[],
  which: 'relay' | 'ioRelay',
  title: string,
  what: string,
): string[] {
  const withRelay = rates.filter((r) => r[which]);
  if (withRelay.length === 0) return [];
  const ms = (v: number): string => (Number.isFinite(v) ? `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms` : 'n/a');
  const x = (a: number, b: number): string => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : 'n/a');
  return [
    '',
    `**latency against ${title}** (${what}, in statemanager’s place, same rates and generator, same run; its floor: etcd’s put → watch in the relay’s phase)`,
    '',
    '| rate | etcd floor in the relay’s phase p50 / p99 | relay p50 / p99 | relay ÷ that floor p50 / p99 | statemanager p50 / p99 | statemanager ÷ its phase’s floor p50 / p99 | statemanager ÷ relay p50 / p99 | puts relayed |',
    '|---|---|---|---|---|---|---|---|',
    ...withRelay.map((r) => {
      const y = r[which]!;
      return `| ${r.rate.toLocaleString('en-US')}/s | ${ms(y.floor.p50)} / ${ms(y.floor.p99)} | ${ms(y.endToEnd.p50)} / ${ms(y.endToEnd.p99)} | ${x(y.endToEnd.p50, y.floor.p50)} / ${x(y.endToEnd.p99, y.floor.p99)} | ${ms(r.endToEnd.p50)} / ${ms(r.endToEnd.p99)} | ${x(r.endToEnd.p50, r.floor.p50)} / ${x(r.endToEnd.p99, r.floor.p99)} | ${x(r.endToEnd.p50, y.endToEnd.p50)} / ${x(r.endToEnd.p99, y.endToEnd.p99)} | ${y.matched.toLocaleString('en-US')} of ${y.puts.toLocaleString('en-US')} |`;
    }),
  ];
}

if (process.argv[1]?.endsWith('report.ts') && process.argv[2]) {
  const run = JSON.parse(readFileSync(process.argv[2], 'utf8')) as {
    kind: string;
    startedAt: string;
    machine: Record<string, unknown>;
    options: RunOptions;
    results: ScenarioResult[];
    targets: ScenarioResult['targets'];
    totalSeconds: number;
  };
  process.stdout.write(markdown(run.kind, new Date(run.startedAt.replace(/T(\d\d)-(\d\d)-(\d\d)-(\d+)Z/, 'T$1:$2:$3.$4Z')).toISOString(), run.machine, run.options, run.results, run.targets, run.totalSeconds));
}
