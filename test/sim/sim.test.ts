// The simulation in the ordinary test run: a sample of schedules holds every invariant, and a
// seed replays exactly. (`npm run test:sim` runs the full CI budget of 1,000 schedules.)
import test from 'ava';
import { runSchedule } from './schedule.js';

test.serial('200 schedules of churn and faults hold every invariant', async (t) => {
  const failing: string[] = [];
  let faults = 0;
  for (let seed = 10_001; seed <= 10_200; seed++) {
    const r = await runSchedule(seed);
    faults += r.faults;
    if (r.violations.length > 0) failing.push(`seed ${seed}: ${r.violations.join('; ')}`);
  }
  t.log(`200 schedules, ${faults} faults`);
  t.deepEqual(failing, []);
});

test.serial('a seed replays exactly: the same commits, calls and steps', async (t) => {
  const a = await runSchedule(4242);
  const b = await runSchedule(4242);
  t.deepEqual(a, b);
  t.true(a.commits > 20 && a.steps > 500);
});
