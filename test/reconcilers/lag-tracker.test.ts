import test from 'ava';
import { LagTracker } from '../../reconcilers/lag-tracker.js';

function tracker() {
  let now = 0;
  const samples: number[] = [];
  const lag = new LagTracker(
    () => now,
    (s) => samples.push(s),
  );
  return { lag, samples, at: (t: number) => (now = t) };
}

test('a container change that reaches a package state is measured from the first change', (t) => {
  const { lag, samples, at } = tracker();
  at(1000);
  lag.containerChanged('m');
  at(1005);
  lag.containerChanged('m'); // coalesced: the earliest change counts
  at(1010);
  lag.modelChanged('m', ['p1', 'p2']);
  at(1030);
  lag.packageSettled('p1', true);
  lag.packageSettled('p2', false);
  t.deepEqual(samples, [0.03]);
});

test('a change that does not move the model or package gives no sample and leaves nothing behind', (t) => {
  const { lag, samples, at } = tracker();
  at(0);
  lag.containerChanged('m');
  lag.modelUnchanged('m');
  lag.packageSettled('p', true);
  t.deepEqual(samples, []);
  at(100);
  lag.containerChanged('m');
  at(150);
  lag.modelChanged('m', ['p']);
  lag.packageSettled('p', true);
  t.deepEqual(samples, [0.05]);
});

test('a package reconcile that finished before the model change cannot leave a stale start time', (t) => {
  const { lag, samples, at } = tracker();
  at(0);
  lag.containerChanged('m');
  lag.packageSettled('p', false); // an unrelated pass over the package
  at(10);
  lag.modelChanged('m', ['p']);
  at(12);
  lag.packageSettled('p', true);
  at(5000);
  lag.packageSettled('p', true); // a later write owes nothing to the old change
  t.deepEqual(samples, [0.012]);
});
