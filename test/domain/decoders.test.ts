import test from 'ava';
import { containerDecoder, decodePackageDefinition, decodeState, SharedNames } from '../../domain/decoders.js';
import { KeyLayout } from '../../domain/keys.js';

const keys = new KeyLayout('');

test('shared names: one entry per distinct name, up to the bound; past it the table starts again', (t) => {
  const names = new SharedNames(3);
  for (const n of ['a', 'b', 'a', 'b']) t.is(names.shared(n), n);
  t.is(names.size, 2, 'below the bound: repeats add nothing');
  t.is(names.shared('c'), 'c');
  t.is(names.size, 3, 'at the bound');
  t.is(names.shared('a'), 'a');
  t.is(names.size, 3, 'at the bound, a kept name adds nothing');
  t.is(names.shared('d'), 'd');
  t.is(names.size, 1, 'past the bound: started again with the new name');
});

test('container decoder: the node name comes from the key, the same through a table that has seen it or not', (t) => {
  const names = new SharedNames(8);
  const decode = containerDecoder(names);
  const value = JSON.stringify({ id: 'c1', annotation: { 'io.pullpiri.annotations.model': 'm' }, state: { Status: 'running' } });
  for (const node of ['n1', 'n2', 'n1']) {
    const d = decode(keys, `/container/${node}/c1`, value);
    t.deepEqual(d, containerDecoder(new SharedNames(8))(keys, `/container/${node}/c1`, value));
    t.like(d, { value: { id: 'c1', model: 'm', status: 'running', node } });
  }
  t.is(names.size, 2);
  t.like(decode(keys, '/container/n1', value), { value: undefined, problem: { reason: 'bad_key' } });
  // Invalid UTF-8 in the key (decoded to U+FFFD): two such ids would read as one.
  for (const raw of [Buffer.from([0x2f, 0x63, 0x6f, 0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65, 0x72, 0x2f, 0x6e, 0x31, 0x2f, 0x63, 0xff]), Buffer.from('/container/n\uFFFD1/c1')]) {
    t.like(decode(keys, raw.toString(), value), { value: undefined, problem: { reason: 'bad_key', detail: 'the node name or container id is not valid UTF-8 (or holds U+FFFD)' } });
  }
});

test('state decoder: keys with the same valid state share one frozen value; a bad value keeps its text and is reported', (t) => {
  const decode = decodeState('model');
  const a = decode(keys, '/model/a/state', 'Running');
  const b = decode(keys, '/model/b/state', 'running');
  t.deepEqual(a, { value: { state: 'Running', raw: 'Running' } });
  t.is(a, b, 'one value for every key in Running');
  t.true(Object.isFrozen(a) && Object.isFrozen(a.value));
  t.deepEqual(decode(keys, '/model/a/state', 'Dead'), { value: { state: 'Dead', raw: 'Dead' } });
  t.like(decode(keys, '/model/a/state', ' Running'), { value: { state: undefined, raw: ' Running' }, problem: { reason: 'bad_state_value' } }, 'padded: not trimmed');
  t.like(decode(keys, '/model/a/state', 'Sleeping'), { value: { state: undefined, raw: 'Sleeping' }, problem: { reason: 'bad_state_value' } });
  t.is(decode(keys, '/model/a/other', 'Running').value, undefined, 'not a state key');
  t.not(decodeState('model')(keys, '/model/a/state', 'Running'), a, 'a table per decoder, not a module global');
});

test('package decoder: entries naming no model are reported with the package kept (a number, a plain string, a merge key only)', (t) => {
  const number = decodePackageDefinition(keys, 'Package/p', 'spec:\n  models:\n    - name: 2024\n    - name: nav\n');
  t.deepEqual(number.value?.models, ['nav']);
  t.is(number.problem?.reason, 'package_model_entry_skipped');
  t.regex(number.problem?.detail ?? '', /1 entry naming no model, first an entry whose name is a number \(2024\), not a string: quote it; 1 listed/);
  const plain = decodePackageDefinition(keys, 'Package/p', 'spec:\n  models:\n    - nav\n    - "map"\n');
  t.deepEqual(plain.value?.models, []);
  t.regex(plain.problem?.detail ?? '', /2 entries naming no model, first an entry that is a string, not a mapping with a name \("nav": write "- name: \.\.\." instead\)/);
  const merged = decodePackageDefinition(keys, 'Package/p', 'd: &d {name: x}\nspec:\n  models:\n    - <<: *d\n');
  t.is(merged.problem?.reason, 'package_model_entry_skipped');
  t.deepEqual(merged.value?.models, []);
  const clean = decodePackageDefinition(keys, 'Package/p', 'spec:\n  models:\n    - name: "2024"\n');
  t.deepEqual(clean, { value: { models: ['2024'], placements: [] } }, 'a quoted number is a name, and nothing is reported');
});
