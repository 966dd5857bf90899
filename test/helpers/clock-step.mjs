// Loaded with --import into a statemanager process under test: steps its wall clock (Date.now
// and `new Date()`) by the milliseconds written in the file CLOCK_STEP_FILE names, read every
// 20 ms, as a clock sync steps a vehicle's clock. The monotonic clock (performance.now, timers)
// is left alone, as the kernel leaves CLOCK_MONOTONIC.
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { setInterval } from 'node:timers';

const file = process.env.CLOCK_STEP_FILE;
if (file) {
  const RealDate = Date;
  const realNow = RealDate.now;
  let offset = 0;
  const read = () => {
    try {
      offset = Number(readFileSync(file, 'utf8').trim()) || 0;
    } catch {
      // not written yet
    }
  };
  read();
  setInterval(read, 20).unref();
  class SteppedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(realNow() + offset);
      else super(...args);
    }
    static now() {
      return realNow() + offset;
    }
  }
  globalThis.Date = SteppedDate;
}
