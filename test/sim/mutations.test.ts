// The simulation's power, kept measured: each known bug shape, planted alone, is found within
// the CI budget (1,000 schedules), and the number of schedules it took is logged.
import test from 'ava';
import { MUTATIONS } from './mutations.js';
import { runSchedule } from './schedule.js';

const BUDGET = 1000;

for (const mutation of MUTATIONS) {
  test.serial(`planted bug "${mutation}" is found within ${BUDGET} schedules`, async (t) => {
    for (let seed = 1; seed <= BUDGET; seed++) {
      const r = await runSchedule(seed, { mutation });
      if (r.violations.length > 0) {
        t.log(`found at seed ${seed} (${seed} schedules): ${r.violations[0]}`);
        t.pass();
        return;
      }
    }
    t.fail(`not found in ${BUDGET} schedules`);
  });
}
