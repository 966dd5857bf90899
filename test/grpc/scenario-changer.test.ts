// Requested scenario transitions in the domain, without etcd: the checks of contract section 3
// in order, the compare-and-swap with its history, and the report to the observer.
import test from 'ava';
import { KeyLayout } from '../../domain/keys.js';
import type { DomainObserver } from '../../reconcilers/ports.js';
import { ScenarioChanger, type ScenarioChange } from '../../src/grpc/scenario-changer.js';
import { parseState } from '../../domain/states.js';
import { FakeListerWatcher } from '../fakes/lister-watcher.js';
import { FakeStateStore } from '../fakes/state-store.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');

function setup(maxAttempts = 3) {
  const keys = new KeyLayout('');
  const lw = new FakeListerWatcher();
  const store = new FakeStateStore(lw, keys);
  const transitions: string[] = [];
  const observer: DomainObserver = {
    invalidInput: () => undefined,
    reconcileRequest: () => undefined,
    transition: (kind, name, from, to, reason) => void transitions.push(`${kind}/${name} ${from}->${to} (${reason})`),
  };
  const reader = {
    read: async (name: string) => {
      const kv = lw.get(keys.stateKey('scenario', name));
      return kv ? { state: parseState('scenario', kv.value), revision: { modRevision: kv.modRevision, version: kv.version } } : { state: undefined, revision: undefined };
    },
  };
  const changer = new ScenarioChanger({ reader, store, observer, clock: { now: () => NOW, elapsed: () => NOW }, maxAttempts });
  const req = (target: ScenarioChange['target'], current?: ScenarioChange['current']): ScenarioChange => ({ name: 's', target, current, source: 'policymanager', identity: 'cn:policymanager', transitionId: 't-1' });
  return { keys, lw, store, transitions, changer, req };
}

test('absent → Idle → Waiting: written with history, reported to the observer', async (t) => {
  const { keys, lw, store, transitions, changer, req } = setup();
  t.like(await changer.change(req('Idle')), { ok: true, from: undefined, to: 'Idle' });
  t.like(await changer.change(req('Waiting', 'Idle')), { ok: true, from: 'Idle', to: 'Waiting' });
  t.is(lw.get(keys.stateKey('scenario', 's'))?.value, 'Waiting');
  t.like(store.history[1], { kind: 'scenario', name: 's', from: 'Idle', to: 'Waiting', source: 'policymanager', identity: 'cn:policymanager', transitionId: 't-1', at: new Date(NOW).toISOString(), reason: 'requested' });
  t.deepEqual(transitions, ['scenario/s null->Idle (requested by policymanager)', 'scenario/s Idle->Waiting (requested by policymanager)']);
});

test('a current_state that is not the stored one is a failed precondition; nothing written', async (t) => {
  const { store, changer, req } = setup();
  await changer.change(req('Idle'));
  t.like(await changer.change(req('Waiting', 'Satisfied')), { ok: false, refusal: 'precondition_failed' });
  t.is(store.writes.length, 1);
});

test('a move the table does not allow, and a move to the stored state, are invalid transitions', async (t) => {
  const { changer, req } = setup();
  await changer.change(req('Idle'));
  t.like(await changer.change(req('Satisfied')), { ok: false, refusal: 'invalid_transition', details: 'scenario s: Idle -> Satisfied is not a scenario transition' });
  t.like(await changer.change(req('Idle')), { ok: false, refusal: 'invalid_transition', details: 'scenario s is already Idle' });
});

test('authorization is asked first, about the state the caller changes from', async (t) => {
  const { changer, req, transitions } = setup();
  await changer.change(req('Idle'));
  const seen: (string | undefined)[] = [];
  const outcome = await changer.change(req('Waiting'), (from) => {
    seen.push(from);
    return 'not yours';
  });
  t.like(outcome, { ok: false, refusal: 'denied', details: 'not yours' });
  t.deepEqual(seen, ['Idle']);
  t.is(transitions.length, 1);
});

test('a state that keeps changing under the swap is refused after the configured attempts', async (t) => {
  const { store, changer, req } = setup(3);
  store.failNext = 3;
  t.like(await changer.change(req('Idle')), { ok: false, refusal: 'contended' });
  t.deepEqual(store.writes, []);
});

test('admitNew is asked only before a state is created, after the contract\'s checks; its refusal writes nothing', async (t) => {
  const { store, req, lw, keys } = setup();
  const asked: string[] = [];
  const reader = {
    read: async (name: string) => {
      const kv = lw.get(keys.stateKey('scenario', name));
      return kv ? { state: parseState('scenario', kv.value), revision: { modRevision: kv.modRevision, version: kv.version } } : { state: undefined, revision: undefined };
    },
  };
  let refuse = false;
  const observer: DomainObserver = { invalidInput: () => undefined, reconcileRequest: () => undefined, transition: () => undefined };
  const changer = new ScenarioChanger({ reader, store, observer, clock: { now: () => NOW, elapsed: () => NOW }, maxAttempts: 3, admitNew: (name) => (asked.push(name), refuse ? 'full' : undefined) });
  t.like(await changer.change(req('Idle')), { ok: true });
  t.like(await changer.change(req('Waiting', 'Idle')), { ok: true });
  t.deepEqual(asked, ['s'], 'an existing state moves without asking');
  refuse = true;
  t.like(await changer.change({ ...req('Waiting'), name: 'new' }), { ok: false, refusal: 'invalid_transition' }, 'the table is checked first');
  t.like(await changer.change({ ...req('Idle'), name: 'new' }), { ok: false, refusal: 'over_limit', details: 'full' });
  t.is(store.writes.length, 2);
  t.is(lw.get(keys.stateKey('scenario', 'new')), undefined);
});
