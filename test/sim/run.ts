// `npm run test:sim [-- --schedules N] [--from S] [--seed N] [--mutation M] [--trace]`: runs
// schedules with seeds S, S+1, …; a failing schedule prints its seed and what broke, and
// `--seed N` replays it exactly. Ends with `N schedules, M faults, K invariant violations`;
// exits non-zero when K > 0.
import { parseArgs } from 'node:util';
import { parseMutation } from './mutations.js';
import { runSchedule } from './schedule.js';

const { values } = parseArgs({
  options: {
    schedules: { type: 'string', default: '1000' },
    from: { type: 'string', default: '1' },
    seed: { type: 'string' },
    mutation: { type: 'string' },
    trace: { type: 'boolean', default: false },
    'stop-on-failure': { type: 'boolean', default: false },
  },
});

const mutation = parseMutation(values.mutation);
const seeds = values.seed !== undefined ? [Number(values.seed)] : Array.from({ length: Number(values.schedules) }, (_, k) => Number(values.from) + k);
const trace = values.trace || values.seed !== undefined ? (line: string) => console.log(`  ${line}`) : undefined;
const started = performance.now();
let faults = 0;
let violations = 0;
let schedules = 0;
let steps = 0;
const kinds: Record<string, number> = {};
for (const seed of seeds) {
  const r = await runSchedule(seed, { ...(mutation ? { mutation } : {}), ...(trace ? { trace } : {}) });
  schedules++;
  faults += r.faults;
  steps += r.steps;
  for (const [k, n] of Object.entries(r.faultKinds)) kinds[k] = (kinds[k] ?? 0) + n;
  // Long runs: a line to stderr every 1,000 schedules.
  if (schedules % 1000 === 0 && seeds.length >= 10_000) console.error(`${schedules} schedules, ${violations} violations, ${((performance.now() - started) / 1000).toFixed(0)} s`);
  violations += r.violations.length;
  if (r.violations.length > 0) {
    console.log(`seed ${seed}: ${r.violations.length} invariant violations (replay: npm run test:sim -- --seed ${seed}${mutation ? ` --mutation ${mutation}` : ''})`);
    for (const v of r.violations.slice(0, 10)) console.log(`  ${v}`);
    if (values['stop-on-failure']) break;
  }
}
const secs = (performance.now() - started) / 1000;
console.error(`faults by kind: ${Object.entries(kinds).sort().map(([k, n]) => `${k} ${n}`).join(', ')}`);
console.error(`${secs.toFixed(1)} s, ${(schedules / secs).toFixed(1)} schedules/s, ${steps} steps${mutation ? `, mutation ${mutation}` : ''}`);
console.log(`${schedules} schedules, ${faults} faults, ${violations} invariant violations`);
process.exitCode = violations > 0 ? 1 : 0;
