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
  for (const r of results) {
    lines.push('', `**${r.name}**`, '', '| | |', '|---|---|', ...r.table.map(([k, v]) => `| ${esc(k.trim())} | ${esc(v)} |`));
  }
  return lines.join('\n') + '\n';
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
