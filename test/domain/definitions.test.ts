// Contract section 1: package definitions list their models in spec.models[].name; scenario
// definitions name their package in spec.target. YAML or JSON.
import test from 'ava';
import { parsePackageDefinition, parseScenarioDefinition, placementKey, type DefinitionFailure } from '../../domain/definitions.js';
import { decodePackageDefinition, decodeScenarioDefinition, decodeState } from '../../domain/decoders.js';
import { KeyLayout } from '../../domain/keys.js';

const PULLPIRI_PACKAGE = `apiVersion: v1
kind: Package
metadata:
  name: helloworld
spec:
  pattern:
    - type: plain
  models:
    - name: helloworld-core
      node: HPC
      resources:
        volume:
        network:
    - name: helloworld-ui
      node: ZONE
      resources: {volume: , network: }
`;

test('package definition: Pullpiri YAML', (t) => {
  t.deepEqual(parsePackageDefinition(PULLPIRI_PACKAGE), {
    ok: true,
    models: ['helloworld-core', 'helloworld-ui'],
    skipped: 0,
    duplicates: [],
    placements: [
      ['helloworld-core', 'HPC'],
      ['helloworld-ui', 'ZONE'],
    ],
  });
});

test('package definition: JSON, compact and with leading whitespace', (t) => {
  const json = JSON.stringify({ apiVersion: 'v1', kind: 'Package', spec: { models: [{ name: 'a' }, { name: 'b', node: 'n' }] } });
  t.deepEqual(parsePackageDefinition(json), { ok: true, models: ['a', 'b'], skipped: 0, duplicates: [], placements: [['b', 'n']] });
  t.deepEqual(parsePackageDefinition(`\n  ${json}\n`), { ok: true, models: ['a', 'b'], skipped: 0, duplicates: [], placements: [['b', 'n']] });
});

test('package definition: YAML flow mapping starting with { that is not JSON', (t) => {
  t.deepEqual(parsePackageDefinition('{spec: {models: [{name: a}, {name: b}]}}'), {
    ok: true,
    models: ['a', 'b'],
    skipped: 0,
    duplicates: [],
    placements: [],
  });
});

test('package definition: duplicate model names are deduplicated in order and reported', (t) => {
  const yaml = 'spec:\n  models:\n    - name: b\n    - name: a\n    - name: b\n    - name: c\n    - name: a\n    - name: b\n';
  t.deepEqual(parsePackageDefinition(yaml), { ok: true, models: ['b', 'a', 'c'], skipped: 0, duplicates: ['b', 'a'], placements: [] });
});

test('package definition: entries without a string name are skipped and counted', (t) => {
  const yaml = [
    'spec:',
    '  models:',
    '    - name: a',
    '    - node: n1', // no name
    '    - name: 42', // not a string
    '    - name: ""', // empty
    '    - name:', // null
    '    - just-a-string',
    '    - name: "7"', // quoted: a string
  ].join('\n');
  t.deepEqual(parsePackageDefinition(yaml), { ok: true, models: ['a', '7'], skipped: 5, firstSkipped: 'an entry without a name', duplicates: [], placements: [] });
});

test('package definition: an empty models list is valid', (t) => {
  t.deepEqual(parsePackageDefinition('spec:\n  models: []\n'), { ok: true, models: [], skipped: 0, duplicates: [], placements: [] });
  t.deepEqual(parsePackageDefinition('{"spec":{"models":[]}}'), { ok: true, models: [], skipped: 0, duplicates: [], placements: [] });
  // `models:` with no entries (YAML null, JSON null): an empty list, not an invalid definition.
  t.deepEqual(parsePackageDefinition('spec:\n  models:\n'), { ok: true, models: [], skipped: 0, duplicates: [], placements: [] });
  t.deepEqual(parsePackageDefinition('{"spec":{"models":null}}'), { ok: true, models: [], skipped: 0, duplicates: [], placements: [] });
});

test('package definition indented up to 256 columns (compact indicators included) is still read', (t) => {
  const deep = `spec:\n  models:\n    - name: a\n  x:\n${' '.repeat(250)}- - - y\n`;
  t.deepEqual(parsePackageDefinition(deep), { ok: true, models: ['a'], skipped: 0, duplicates: [], placements: [] });
  // 255 columns and the `:`: at the bound.
  const at = `spec:\n  models:\n    - name: a\n  x:\n${' '.repeat(255)}y: z\n`;
  t.deepEqual(parsePackageDefinition(at), { ok: true, models: ['a'], skipped: 0, duplicates: [], placements: [] });
  // Dashes inside a scalar are not indicators: a line of them is text.
  t.deepEqual(parsePackageDefinition(`spec:\n  models:\n    - name: a\n  note: ${'-'.repeat(1000)}\n`), { ok: true, models: ['a'], skipped: 0, duplicates: [], placements: [] });
});

test('package definition nested 64 levels deep is still read', (t) => {
  const r = parsePackageDefinition(`{"spec":{"models":[{"name":"a","x":${'['.repeat(60)}${']'.repeat(60)}}]}}`);
  t.deepEqual(r, { ok: true, models: ['a'], skipped: 0, duplicates: [], placements: [] });
});

test('package definition: keys that only look alike are not duplicates (1 and "1", a key in two mappings)', (t) => {
  const r = parsePackageDefinition('spec:\n  1: a\n  "1": b\n  models:\n    - name: a\n      x: 1\n    - name: b\n      x: 2\n');
  t.deepEqual(r, { ok: true, models: ['a', 'b'], skipped: 0, duplicates: [], placements: [] });
});

test('package definition of 50,000 keys in one mapping: read whole, and a duplicate as its last key found (the parser\'s own check compared every key with every other: 10.5 s for 40,000)', (t) => {
  const keys = Array.from({ length: 50_000 }, (_, i) => `k${i}: "v${i}"`);
  const big = (last: string) => `spec:\n  models:\n    - name: a\n  big: {${[...keys, last].join(', ')}}\n`;
  t.deepEqual(parsePackageDefinition(big('k50000: x')), { ok: true, models: ['a'], skipped: 0, duplicates: [], placements: [] });
  const r = parsePackageDefinition(big('k7: again'));
  t.false(r.ok);
  if (!r.ok) {
    t.is(r.reason, 'malformed');
    t.regex(r.detail, /Map keys must be unique: "k7" appears twice/);
  }
});

const BAD_PACKAGES: [string, string, DefinitionFailure][] = [
  ['unparseable YAML', 'spec:\n  models: [a, b\n', 'malformed'],
  ['bad indentation', 'spec:\n  models:\n    - name: a\n   bad: x\n', 'malformed'],
  ['duplicate keys', 'spec:\n  models: []\nspec:\n  models: []\n', 'malformed'],
  ['duplicate keys, quoted one way and plain the other', 'spec:\n  models: []\n"spec":\n  models: []\n', 'malformed'],
  ['duplicate keys in a flow mapping', '{spec: {models: [], models: []}}', 'malformed'],
  ['duplicate keys in a model entry', 'spec:\n  models:\n    - name: a\n      node: n1\n      node: n2\n', 'malformed'],
  ['duplicate empty keys', 'spec:\n  models: []\n  : a\n  : b\n', 'malformed'],
  ['several documents', 'spec:\n  models: []\n---\nspec:\n  models: []\n', 'malformed'],
  ['broken JSON-looking text', '{"spec": {"models": [}', 'malformed'],
  ['nested 200,000 levels (the YAML parser recurses per level)', '['.repeat(200_000) + ']'.repeat(200_000), 'too_large'],
  ['nested 400,000 levels as a compact block sequence (- - - …)', `spec:\n  models: ${'- '.repeat(400_000)}a\n`, 'too_large'],
  ['a line indented past 256 columns', `spec:\n  models: []\n  x:\n${' '.repeat(257)}y: z\n`, 'too_large'],
  ['256 spaces and a key: 257 with its `:`', `spec:\n  models: []\n${' '.repeat(256)}x: y\n`, 'too_large'],
  ['257 compact nestings after text that opens no flow (x{)', `spec:\n  models: []\n  a: x{\n  b: ${'- '.repeat(257)}c\n`, 'too_large'],
  ['nested 65 levels inside a valid document', `spec:\n  models: ${'['.repeat(65)}${']'.repeat(65)}\n`, 'too_large'],
  ['over 1 MiB', `spec:\n  models: []\n  pad: ${'x'.repeat(1024 * 1024)}\n`, 'too_large'],
  ['empty value', '', 'not_an_object'],
  ['a scalar', 'hello', 'not_an_object'],
  ['a list', '- name: a\n', 'not_an_object'],
  ['JSON array', '[{"name":"a"}]', 'not_an_object'],
  ['missing spec', 'apiVersion: v1\nkind: Package\nmetadata:\n  name: x\n', 'no_spec'],
  ['spec not a mapping', 'spec: [1, 2]\n', 'no_spec'],
  ['spec null', 'spec:\n', 'no_spec'],
  ['missing models', 'spec:\n  pattern:\n    - type: plain\n', 'no_models'],
  ['models a mapping', 'spec:\n  models:\n    name: a\n', 'no_models'],
  ['models a string', '{"spec":{"models":"a,b"}}', 'no_models'],
];

for (const [title, value, reason] of BAD_PACKAGES) {
  test(`package definition invalid: ${title} → ${reason}`, (t) => {
    const r = parsePackageDefinition(value);
    t.false(r.ok);
    if (!r.ok) {
      t.is(r.reason, reason);
      t.true(r.detail.length > 0);
    }
  });
}

test('package definition: alias bombs are refused, not expanded', (t) => {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 12; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
  lines.push('spec:\n  models: *a11');
  const r = parsePackageDefinition(lines.join('\n'));
  t.false(r.ok);
  if (!r.ok) t.is(r.reason, 'malformed');
});

const PULLPIRI_SCENARIO = `apiVersion: v1
kind: Scenario
metadata:
  name: helloworld
spec:
  condition:
  action: update
  target: helloworld
`;

test('scenario definition: Pullpiri YAML', (t) => {
  t.deepEqual(parseScenarioDefinition(PULLPIRI_SCENARIO), { ok: true, target: 'helloworld' });
});

test('scenario definition: JSON', (t) => {
  t.deepEqual(parseScenarioDefinition('{"kind":"Scenario","spec":{"target":"pkg-1","action":"launch"}}'), {
    ok: true,
    target: 'pkg-1',
  });
});

const BAD_SCENARIOS: [string, string, DefinitionFailure][] = [
  ['unparseable', 'spec: {target: [x\n', 'malformed'],
  ['not a mapping', '"just text"', 'not_an_object'],
  ['missing spec', 'kind: Scenario\n', 'no_spec'],
  ['missing target', 'spec:\n  action: update\n', 'no_target'],
  ['null target', 'spec:\n  target:\n', 'no_target'],
  ['empty target', 'spec:\n  target: ""\n', 'no_target'],
  ['numeric target', 'spec:\n  target: 12\n', 'no_target'],
  ['list target', '{"spec":{"target":["a"]}}', 'no_target'],
];

for (const [title, value, reason] of BAD_SCENARIOS) {
  test(`scenario definition invalid: ${title} → ${reason}`, (t) => {
    const r = parseScenarioDefinition(value);
    t.false(r.ok);
    if (!r.ok) {
      t.is(r.reason, reason);
      t.true(r.detail.length > 0);
    }
  });
}

test('package definition: a model name with / is invalid input (its state key could never be read back)', (t) => {
  const r = parsePackageDefinition('spec:\n  models:\n    - name: ok\n    - name: a/b\n');
  t.like(r, { ok: false, reason: 'bad_model_name' });
  t.regex(r.ok ? '' : r.detail, /"a\/b": a model name cannot contain '\/'/);
});

for (const [title, name, ok] of [
  ['252 bytes', 'm'.repeat(252), true],
  ['253 bytes', 'm'.repeat(253), true],
  ['254 bytes', 'm'.repeat(254), false],
  ['253 bytes of 2-byte characters and one more', 'é'.repeat(126) + 'm', true],
  ['254 bytes of 2-byte characters', 'é'.repeat(127), false],
  ['84 3-byte characters (252 bytes) and a 4-byte one (256)', '가'.repeat(84) + '😀', false],
  ['63 4-byte characters (252 bytes) and one byte more', '😀'.repeat(63) + 'm', true],
] as const) {
  test(`package definition: a model name of ${title} is ${ok ? 'valid' : 'invalid input (the reads refuse names over 253 bytes)'}`, (t) => {
    const r = parsePackageDefinition(`spec:\n  models:\n    - name: ${JSON.stringify(name)}\n`);
    if (ok) t.like(r, { ok: true, models: [name] });
    else {
      t.like(r, { ok: false, reason: 'bad_model_name' });
      t.regex(r.ok ? '' : r.detail, /at most 253/);
    }
  });
  test(`decoder: a package named by ${title} is ${ok ? 'valid' : 'invalid input'}; a scenario likewise`, (t) => {
    const keys = new KeyLayout('');
    const pkg = decodePackageDefinition(keys, `Package/${name}`, 'spec:\n  models: []\n');
    const scenario = decodeScenarioDefinition(keys, `Scenario/${name}`, 'spec:\n  target: p\n');
    if (ok) {
      t.deepEqual(pkg, { value: { models: [], placements: [] } });
      t.deepEqual(scenario, { value: 'p' });
    } else {
      t.like(pkg, { value: undefined, problem: { reason: 'package_name_too_long' } });
      t.like(scenario, { value: undefined, problem: { reason: 'scenario_name_too_long' } });
    }
  });
}

test('package definition: placements are model and node pairs, once each, also for a model listed twice on two nodes', (t) => {
  const r = parsePackageDefinition('spec:\n  models:\n    - {name: a, node: n1}\n    - {name: a, node: n2}\n    - {name: a, node: n1}\n    - {name: b, node: 7}\n    - {name: c, node: ""}\n');
  t.like(r, { ok: true, models: ['a', 'b', 'c'], placements: [['a', 'n1'], ['a', 'n2']] });
});

test('decoder: a model name with / makes the package definition invalid input, reported with its reason; placements are kept', (t) => {
  const keys = new KeyLayout('');
  t.like(decodePackageDefinition(keys, 'Package/p', 'spec:\n  models:\n    - name: a/b\n'), {
    value: undefined,
    problem: { reason: 'package_bad_model_name' },
  });
  t.deepEqual(decodePackageDefinition(keys, 'Package/p', 'spec:\n  models:\n    - {name: a, node: n1}\n    - {name: b}\n'), {
    value: { models: ['a', 'b'], placements: [placementKey('a', 'n1')] },
  });
  t.not(placementKey('a', 'n1'), placementKey('a', 'n2'));
  t.not(placementKey('a', 'n1'), placementKey('b', 'n1'));
});

for (const [title, json, problem] of [
  ['a lone high surrogate (a name cut in the middle of an emoji)', '"s2\\udbffy"', /is not valid UTF-8/],
  ['a lone low surrogate', '"s2\\udc00y"', /is not valid UTF-8/],
  ['U+FFFD (what bytes that are not UTF-8 read as)', '"r\\ufffdsume"', /is not valid UTF-8/],
  ['a zero-width joiner (the family emoji)', '"fam-\\ud83d\\udc68\\u200d\\ud83d\\udc69"', /invisible or separator character \(U\+200D\)/],
  ['a variation selector (a red heart)', '"love-\\u2764\\ufe0f"', /invisible or separator character \(U\+FE0F\)/],
  ['a zero-width space', '"n1\\u200b"', /invisible or separator character \(U\+200B\)/],
  ['a soft hyphen', '"a\\u00adb"', /invisible or separator character \(U\+00AD\)/],
  ['a control character', '"a\\u0007b"', /control characters/],
  ['a bidirectional override', '"a\\u202eb"', /bidirectional override/],
] as const) {
  test(`names with ${title}: a model so named or a scenario targeting one is invalid input, and so is a Package/, Scenario/ or state key (the gRPC reads refuse the name)`, (t) => {
    const name = JSON.parse(json) as string;
    // JSON and YAML escapes both make such a name.
    for (const text of [`{"spec":{"models":[{"name":"ok"},{"name":${json}}]}}`, `spec:\n  models:\n    - name: ok\n    - name: ${json}\n`]) {
      const r = parsePackageDefinition(text);
      t.like(r, { ok: false, reason: 'bad_model_name' });
      t.regex(r.ok ? '' : r.detail, problem);
    }
    t.like(parseScenarioDefinition(`{"spec":{"target":${json}}}`), { ok: false, reason: 'bad_target' });
    const keys = new KeyLayout('');
    t.like(decodePackageDefinition(keys, `Package/p-${name}`, 'spec:\n  models: []\n'), { value: undefined, problem: { reason: 'bad_key' } });
    t.like(decodeScenarioDefinition(keys, `Scenario/s-${name}`, 'spec:\n  target: p\n'), { value: undefined, problem: { reason: 'bad_key' } });
    t.like(decodeScenarioDefinition(keys, 'Scenario/s', `{"spec":{"target":${json}}}`), { value: undefined, problem: { reason: 'scenario_bad_target' } });
    // A state key so named (written by someone else, raw): no state key, said as a bad key.
    const stateKey = keys.stateKey('model', `m-${name}`);
    t.is(keys.parseStateKey('model', stateKey), undefined);
    t.like(decodeState('model')(keys, stateKey, 'Running'), { value: undefined, problem: { reason: 'bad_key' } });
    t.deepEqual(decodeState('model')(keys, '/model/m/other', 'Running'), { value: undefined }, 'not shaped as a state key: nothing said');
  });
}

test('names with an emoji (a surrogate pair), CJK, Hangul, combining marks are valid everywhere', (t) => {
  for (const name of ['map-😀', '地図', '지도', 'café', 'n\u0303o', '🇰🇷']) {
    t.like(parsePackageDefinition(JSON.stringify({ spec: { models: [{ name }] } })), { ok: true, models: [name] });
    t.is(new KeyLayout('').parseStateKey('model', `/model/${name}/state`), name);
  }
  t.like(parsePackageDefinition('{"spec":{"models":[{"name":"map-\\ud83d\\ude00"}]}}'), { ok: true, models: ['map-😀'] });
  t.like(parseScenarioDefinition('{"spec":{"target":"pkg-😀"}}'), { ok: true, target: 'pkg-😀' });
  t.deepEqual(decodePackageDefinition(new KeyLayout(''), 'Package/p-😀', 'spec:\n  models: []\n'), { value: { models: [], placements: [] } });
});

test('a package of nearly 1 MiB (the largest the limits take) with 30,000 placed entries: read whole, every pair once, every duplicate once (the lists were scanned per entry: 5 s for 36,000)', (t) => {
  // 10,000 models, each listed three times: on two nodes, then again on the first.
  const lines = ['spec:', '  models:'];
  for (let copy = 0; copy < 3; copy++) for (let i = 0; i < 10_000; i++) lines.push(`  - name: m${i}`, `    node: ${copy === 1 ? 'b' : 'a'}${i % 50}`);
  const text = lines.join('\n') + '\n';
  t.true(text.length <= 1024 * 1024 && text.length > 800_000, `${text.length} characters`);
  const r = parsePackageDefinition(text);
  if (!r.ok) return t.fail(r.detail);
  t.is(r.models.length, 10_000);
  t.is(r.duplicates.length, 10_000);
  t.deepEqual(r.duplicates.slice(0, 2), ['m0', 'm1']);
  t.is(r.placements.length, 20_000);
  t.deepEqual(r.placements.slice(0, 2), [['m0', 'a0'], ['m1', 'a1']]);
  t.deepEqual(r.placements[10_000], ['m0', 'b0']);
});

test('the indentation bound counts what nests: a line of spaces alone does not, nor the colons of a one-line flow list; 256 columns of indentation are taken', (t) => {
  // 130 placed models in one flow line: 260 `: ` inside braces (3 KB).
  const flowLine = `{"spec": {"models": [${Array.from({ length: 130 }, (_, i) => `{name: m${i}, node: n${i}}`).join(', ')}]}}`;
  t.like(parsePackageDefinition(`spec:\n  models: [${Array.from({ length: 130 }, (_, i) => `{name: m${i}, node: n${i}}`).join(', ')}]\n`), { ok: true });
  t.like(parsePackageDefinition(flowLine.replace(/"/g, '')), { ok: true });
  // A line of 300 spaces between two keys.
  const r = parsePackageDefinition(`spec:\n  models:\n    - name: a\n${' '.repeat(300)}\n  x: y\n`);
  t.like(r, { ok: true, models: ['a'] });
  // 255 spaces and a key (256 with its `:`) are taken; the refusal above is one column past.
  const at = parsePackageDefinition(`spec:\n  models: []\n  x:\n${' '.repeat(255)}y: z\n`);
  t.like(at, { ok: true });
});
