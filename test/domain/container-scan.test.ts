// The container scanner against JSON.parse: where it answers, parseContainer's answer is the one
// JSON.parse gives (parseWhole); it never accepts what JSON.parse rejects; and on a node agent's
// ordinary JSON it does answer.
import test from 'ava';
import fc from 'fast-check';
import { scanContainer } from '../../domain/container-scan.js';
import { MODEL_ANNOTATIONS, MODEL_CONFIG_KEY, MODEL_NAME_PREFIX, parseContainer, parseWhole } from '../../domain/container.js';

const NAMES = { annotations: MODEL_ANNOTATIONS, config: [MODEL_CONFIG_KEY], namePrefix: MODEL_NAME_PREFIX } as const;

type Json = { t: 'obj'; members: [Str, Json][] } | { t: 'arr'; items: Json[] } | Str | { t: 'raw'; v: string };
/** A string and how it is written: `escape` ≥ 0 writes that character as \uXXXX. */
type Str = { t: 'str'; v: string; escape: number };

const KEYS = ['id', 'names', 'state', 'config', 'annotation', 'Status', 'Running', 'model', ...MODEL_ANNOTATIONS, 'image', 'Pid', '__proto__', 'x'];
const VALUES = ['running', 'RUNNING', ' Exited ', '', ' ', 'true', ' True', 'false', 'weird', 'model-a', '/model-b', 'model-', '/model-', `model-${'n'.repeat(12)}`, `/model-${'n'.repeat(13)}`, `/model-${'é'.repeat(20)}`, 'nav', 'a'.repeat(40), '0123456789abcdef0123456789abcdef', 'é', '😀'];

const str = (pool: string[]): fc.Arbitrary<Str> =>
  fc.record({ v: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...pool) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) }), escape: fc.oneof({ weight: 9, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.nat(8) }) }).map((s) => ({ t: 'str' as const, ...s }));
const raw = fc.constantFrom('0', '-1', '12.5e-3', '1E+2', 'true', 'false', 'null', '-0.0').map((v) => ({ t: 'raw' as const, v }));
const { json } = fc.letrec<{ json: Json; obj: Json; arr: Json }>((tie) => ({
  json: fc.oneof({ depthSize: 'small', withCrossShrink: true }, str(VALUES), raw, tie('obj'), tie('arr')),
  obj: fc.array(fc.tuple(str(KEYS), tie('json')), { maxLength: 6 }).map((members) => ({ t: 'obj' as const, members })),
  arr: fc.array(tie('json'), { maxLength: 4 }).map((items) => ({ t: 'arr' as const, items })),
}));
/** A container-like document: an object whose members are mostly the fields the scanner reads. */
const containerDoc = fc.array(fc.tuple(str(['id', 'names', 'state', 'config', 'annotation', 'image', 'x']), json), { maxLength: 8 }).map((members) => ({ t: 'obj' as const, members }));
const WS = ['', ' ', '\n  ', '\t', '\r\n'];

function write(j: Json, ws: () => string): string {
  switch (j.t) {
    case 'raw':
      return j.v;
    case 'str': {
      const body = JSON.stringify(j.v).slice(1, -1);
      if (j.escape < 0 || j.escape >= j.v.length || body !== j.v) return `"${body}"`;
      return `"${j.v.slice(0, j.escape)}\\u${j.v.charCodeAt(j.escape).toString(16).padStart(4, '0')}${j.v.slice(j.escape + 1)}"`;
    }
    case 'arr':
      return `[${ws()}${j.items.map((i) => write(i, ws)).join(`${ws()},${ws()}`)}${ws()}]`;
    case 'obj':
      return `{${ws()}${j.members.map(([k, v]) => `${write(k, ws)}${ws()}:${ws()}${write(v, ws)}`).join(`${ws()},${ws()}`)}${ws()}}`;
  }
}
const text = (root: fc.Arbitrary<Json>): fc.Arbitrary<string> => fc.tuple(root, fc.array(fc.nat(WS.length - 1), { minLength: 1, maxLength: 32 })).map(([j, picks]) => {
  let n = 0;
  return write(j, () => WS[picks[n++ % picks.length]!]!);
});

test('property: where the scanner answers, parseContainer gives what JSON.parse gives', (t) => {
  let answered = 0;
  fc.assert(
    fc.property(fc.oneof(text(containerDoc), text(json)), fc.string({ maxLength: 4 }), (doc, fallbackId) => {
      if (scanContainer(doc, NAMES) !== undefined) answered++;
      t.deepEqual(parseContainer(doc, fallbackId), parseWhole(doc, fallbackId), doc);
    }),
    { numRuns: 20_000 },
  );
  t.true(answered > 5000, `the scanner answered ${answered} documents`);
});

/** One edit: somewhere in the text, delete, replace with or insert one character of JSON's syntax. */
const edit = fc.tuple(fc.nat(), fc.constantFrom('delete', 'replace', 'insert'), fc.constantFrom(...'{}[],:"\\0-+.eEu tfn1\u0001\u00a0\ufeffx/'));
const broken = fc.tuple(text(containerDoc), fc.array(edit, { minLength: 1, maxLength: 2 })).map(([doc, edits]) => {
  let s = doc;
  for (const [at, op, c] of edits) {
    const i = at % (s.length + 1);
    s = op === 'delete' ? s.slice(0, i) + s.slice(i + 1) : op === 'replace' ? s.slice(0, i) + c + s.slice(i + 1) : s.slice(0, i) + c + s.slice(i);
  }
  return s;
});

test('property: the scanner never accepts what JSON.parse rejects (edited documents)', (t) => {
  let rejected = 0;
  fc.assert(
    fc.property(broken, (doc) => {
      let valid = true;
      try {
        JSON.parse(doc);
      } catch {
        valid = false;
        rejected++;
      }
      if (!valid) t.is(scanContainer(doc, NAMES), undefined, doc);
      t.deepEqual(parseContainer(doc), parseWhole(doc), doc);
    }),
    { numRuns: 20_000 },
  );
  t.true(rejected > 5000, `${rejected} edited documents were invalid JSON`);
});

test('invalid JSON the scanner must reject, one shape at a time', (t) => {
  const ok = '{"id":"c1","state":{"Status":"running"},"annotation":{"model":"m"}}';
  t.not(scanContainer(ok, NAMES), undefined);
  const bad = [
    '',
    ' ',
    '{',
    '{"id":"c1",}',
    '{"id":"c1" "x":1}',
    '{"id" "c1"}',
    '{"id":}',
    '{,"id":"c1"}',
    '{"id":"c1"}}',
    '{"id":"c1"} x',
    '{"x":01}',
    '{"x":1.}',
    '{"x":.5}',
    '{"x":-}',
    '{"x":1e}',
    '{"x":1e+}',
    '{"x":+1}',
    '{"x":tru}',
    '{"x":nul}',
    '{"x":True}',
    '{"x":[1,]}',
    '{"x":[,1]}',
    '{"x":{"a":1,}}',
    '{"x":"a\u0001b"}',
    '{"x":"a\\xb"}',
    '{"x":"\\u12G4"}',
    '{"x":"\\u12"}',
    '{"x":"unterminated}',
    '{"x":"a\\"}',
    '\ufeff{"x":1}',
    '{"x":1}\u00a0',
    "{'x':1}",
    '{x:1}',
    '{"names":["model-a",]}',
    '{"state":{"Status":"running",}}',
    '{"state":{"Status" "running"}}',
    '{"annotation":{"model":"m"},}',
  ];
  for (const doc of bad) {
    t.throws(() => JSON.parse(doc), undefined, `JSON.parse accepts ${JSON.stringify(doc)}`);
    t.is(scanContainer(doc, NAMES), undefined, JSON.stringify(doc));
    t.is(parseContainer(doc).ok, false, JSON.stringify(doc));
  }
});

test('what the scanner leaves to JSON.parse is still answered the same', (t) => {
  const cases = [
    '[]',
    'null',
    '"x"',
    '{"state":{"St\\u0061tus":"running"},"annotation":{"model":"m"}}', // an escaped key could be a field's name
    '{"annotation":{"model":"m\\u00e9"}}', // an escaped value
    '{"names":["/model-\\u0061"]}',
    '{"x":"\\n\\t\\"\\\\\\/\\b\\f\\r"}', // escapes in a field not read are read past, not left to JSON.parse
    `{"x":${'['.repeat(70)}${']'.repeat(70)},"annotation":{"model":"m"}}`, // deeper than the scanner goes
    `{"x":${'['.repeat(10)}${']'.repeat(10)},"annotation":{"model":"m"}}`,
  ];
  for (const doc of cases) t.deepEqual(parseContainer(doc, 'key-id'), parseWhole(doc, 'key-id'), doc);
  t.is(scanContainer(cases[3]!, NAMES), undefined);
  t.not(scanContainer(cases[6]!, NAMES), undefined);
  t.is(scanContainer(cases[7]!, NAMES), undefined);
  t.not(scanContainer(cases[8]!, NAMES), undefined);
});

test('nesting: 64 levels (the document\'s own object counted) are read, 65 are left to JSON.parse', (t) => {
  const nested = (arrays: number) => `{"x":${'['.repeat(arrays)}${']'.repeat(arrays)},"annotation":{"model":"m"}}`;
  t.not(scanContainer(nested(62), NAMES), undefined);
  t.not(scanContainer(nested(63), NAMES), undefined);
  t.is(scanContainer(nested(64), NAMES), undefined);
  for (const n of [62, 63, 64, 5000]) t.deepEqual(parseContainer(nested(n)), parseWhole(nested(n)));
  t.true(parseContainer(nested(5000)).ok);
});

test('a repeated field replaces the one before it, as in JSON.parse', (t) => {
  const cases = [
    '{"state":{"Status":"running"},"state":{"Running":"true"},"annotation":{"model":"m"}}',
    '{"state":{"Status":"running","Status":7},"annotation":{"model":"m"}}',
    '{"annotation":{"model":"m"},"annotation":{"pullpiri.model":"p"}}',
    '{"annotation":{"model":"m"},"annotation":null,"config":{"model":"c"}}',
    '{"names":["model-a"],"names":["x"],"config":{"model":"c"}}',
    '{"names":["model-a"],"names":"model-b"}',
    '{"id":"first","id":5,"annotation":{"model":"m"}}',
    '{"config":{"model":"c","model":""},"names":["model-n"]}',
  ];
  for (const doc of cases) {
    t.not(scanContainer(doc, NAMES), undefined, doc);
    t.deepEqual(parseContainer(doc, 'key-id'), parseWhole(doc, 'key-id'), doc);
  }
  t.deepEqual(parseContainer(cases[0]!), { ok: true, container: { id: '', model: 'm', status: 'running' }, unknownStatus: false });
  t.deepEqual(parseContainer(cases[2]!), { ok: true, container: { id: '', model: 'p', status: 'unknown' }, unknownStatus: false });
  t.deepEqual(parseContainer(cases[7]!), { ok: true, container: { id: '', model: 'n', status: 'unknown' }, unknownStatus: false });
});

test('a node agent\'s ordinary container JSON is read by the scanner', (t) => {
  const id = 'f3a1c2d4e5b6a7980123456789abcdef0123456789abcdef0123456789abcdef';
  const doc = JSON.stringify({
    id,
    names: [`/${id.slice(0, 12)}`, '/model-helloworld'],
    image: 'sdv.io/helloworld:1.0',
    state: { Status: 'Running', Running: 'true', Paused: 'false', Pid: '4242', ExitCode: '0', StartedAt: '2025-01-01T00:00:00Z' },
    config: { Hostname: 'hw', Image: 'sdv.io/helloworld:1.0' },
    annotation: { 'io.pullpiri.annotations.package': 'hw-pkg' },
  });
  t.deepEqual(scanContainer(doc, NAMES), { id, annotations: [undefined, undefined, undefined], configModel: undefined, nameModel: 'helloworld', status: 'Running', running: 'true' });
  t.deepEqual(parseContainer(doc), { ok: true, container: { id, model: 'helloworld', status: 'running' }, unknownStatus: false });
});

test('values just below, at and past the length V8 stops copying substrings are read whole and equal', (t) => {
  for (const n of [11, 12, 13, 14, 64]) {
    const id = 'i'.repeat(n);
    const model = 'm'.repeat(n);
    const doc = JSON.stringify({ id, state: { Status: 'running' }, names: [`/model-${model}`] });
    const scanned = scanContainer(doc, NAMES);
    t.is(scanned?.id, id);
    t.is(scanned?.nameModel, model);
    t.deepEqual(parseContainer(doc), parseWhole(doc));
  }
});
