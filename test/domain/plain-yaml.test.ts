// The plain-YAML fast path against the full parser: whenever it answers, it answers exactly what
// the `yaml` package does; it declines (undefined) on anything outside its subset.
import test from 'ava';
import fc from 'fast-check';
import { parse } from 'yaml';
import { parsePlainYaml } from '../../domain/plain-yaml.js';

const full = (text: string): unknown => {
  try {
    return { ok: parse(text) as unknown };
  } catch {
    return { error: true };
  }
};

test('the definitions API servers write are read by the fast path, as the full parser reads them', (t) => {
  const pkg = 'apiVersion: v1\nkind: Package\nmetadata:\n  name: p\nspec:\n  pattern:\n    - type: plain\n  models:\n    - name: m-1\n      node: HPC\n      resources:\n        volume: m-1-vol\n    - name: m2\n      node: n.2\n';
  t.deepEqual(parsePlainYaml(pkg), parse(pkg));
  const flush = 'spec:\n  models:\n  - name: a\n  - name: b\n';
  t.deepEqual(parsePlainYaml(flush), parse(flush));
  const empty = 'spec:\n  condition:\n  target: p\n';
  t.deepEqual(parsePlainYaml(empty), { spec: { condition: null, target: 'p' } });
  // Blank lines (spaces) between keys, no newline at the end, `/` and `.` in scalars.
  const blanks = 'spec:\n   \n\n  target: a/b.c_d-e\n\n  x_1.y-z:';
  t.deepEqual(parsePlainYaml(blanks), parse(blanks));
  t.deepEqual(parsePlainYaml(blanks), { spec: { target: 'a/b.c_d-e', 'x_1.y-z': null } });
  // Keys the object prototype has are plain own keys.
  const proto = 'constructor:\n  toString: x\n  hasOwnProperty: y\n';
  t.deepEqual(parsePlainYaml(proto), parse(proto));
});

test('anything outside the subset is declined, never misread', (t) => {
  for (const text of [
    'spec:\n  models:\n    - name: "a"\n', // quotes
    'spec: {models: [a]}\n', // flow
    'spec:\n  target: true\n', // a boolean
    'spec:\n  target: null\n',
    'spec:\n  target: 12\n', // a number
    'spec:\n  target: a:b\n',
    'spec:\n  target: p\n  target: q\n', // duplicate key
    'spec:\n  models:\n  - &x name: a\n',
    '---\nspec:\n  target: p\n',
    'spec:\n\ttarget: p\n', // tab
    'spec:\n    a: x\n  b: y\n', // bad indentation
    'b:\n  - name:\n   - node: HPC\n', // a sequence whose `- ` is left of its key (found by the property below)
    'null:\n  a: b\n',
    '- a: b\n', // not a mapping at the top
    '',
    // Edges of the line reader: carriage returns, two spaces, a trailing space, a bare or
    // unspaced dash, a key or scalar starting with a digit or dash.
    'spec:\r\n  target: p\r\n',
    'spec:\n  -\n',
    'spec:\n  -name: a\n',
    'spec:\n  1a: b\n',
    'spec:\n  target: -p\n',
    'spec:\n  target: 1p\n',
    'spec:\n  target:\tp\n',
    'spec',
    // `#` is a comment only after a space; a key cannot hold one.
    'spec:\n  target: p#c\n',
    'spec:\n  target:#c\n',
    'spec:\n  tar#get: p\n',
    'spec:\n  - # c\n    name: a\n',
    'spec:\n  target: p\t# c\n',
    // Lines that trim() takes for blank but YAML reads as content (black-box probing): a tab, a
    // no-break space, an ideographic space, a line separator, a BOM, VT, FF, a lone CR.
    'spec:\n\t\n  target: p\n',
    'spec:\n  models:\n  - name: m1\n\u00a0\n  - name: m2\n',
    'spec:\n  target: p\n\u3000\n',
    'spec:\n\u2028\n  target: p\n',
    'spec:\n\ufeff\n  target: p\n',
    'spec:\n\v\n  target: p\n',
    'spec:\n\f\n  target: p\n',
    'spec:\n\r\n  target: p\n',
  ]) {
    t.is(parsePlainYaml(text), undefined, JSON.stringify(text));
  }
});

test('comments, extra spaces before a value and trailing spaces are read as the full parser reads them', (t) => {
  for (const text of [
    'spec:\n  target: p # comment\n',
    'spec:\n  target: p #\n',
    'spec:\n  target:  p\n',
    'spec:\n  target: p \n',
    'spec:\n  target: # nothing here\n',
    'spec:   \n  target: p\n',
    '# a package\nspec: # its spec\n  # the models\n  models:\n  - name: a # first\n# a comment at column 0\n      # one far right\n    node: n1\n  - name: b\n',
  ]) {
    const fast = parsePlainYaml(text);
    t.not(fast, undefined, JSON.stringify(text));
    t.deepEqual({ ok: fast }, full(text), JSON.stringify(text));
  }
  t.deepEqual(parsePlainYaml('spec:\n  target: p # comment\n'), { spec: { target: 'p' } });
  t.deepEqual(parsePlainYaml('# only\n# comments\n'), undefined, 'no mapping: the full parser decides');
});

// Documents built from the subset's pieces and the ones just outside it, at random indentation.
const scalar = fc.oneof(
  fc.constantFrom('a', 'n1', 'm-1', 'HPC', 'x.y', 'a/b', '_z', 'yes', 'no', 'on', 'Infinity', 'e5', 'true', 'False', 'null', '~', '12', '0x1f', '.inf', 'a:b', 'a #b', '"q"', "'q'", '[a]', '{a: b}', '*r', '&r a', '!t a', 'a b'),
);
const key = fc.constantFrom('name', 'node', 'spec', 'models', 'target', 'a', 'b', 'null', 'true', 'k-1', 'k.2');
// What may follow a line: nothing, spaces, a comment, or a `#` that is not one.
const suffix = fc.constantFrom('', '', '', ' ', '  ', ' # c', '  #c: d', ' #', '#c', '\t# c', ' # "q" [a]');
const line = fc.record({ indent: fc.integer({ min: 0, max: 8 }), item: fc.boolean(), key, value: fc.option(scalar, { nil: undefined }), gap: fc.constantFrom(' ', ' ', '  '), suffix });
const commentLine = fc.tuple(fc.integer({ min: 0, max: 10 }), fc.constantFrom('#', '# c', '#- name: x', '# a: b', '', '\t', '\u00a0', '\u3000', '\r', '\ufeff', ' \t ')).map(([n, c]) => ({ text: ' '.repeat(n) + c }));
const randomDoc = fc
  .array(fc.oneof({ weight: 5, arbitrary: line }, { weight: 1, arbitrary: commentLine }), { minLength: 1, maxLength: 12 })
  .map((ls) => ls.map((l) => ('text' in l ? l.text : `${' '.repeat(l.indent)}${l.item ? '- ' : ''}${l.key}:${l.value === undefined ? '' : `${l.gap}${l.value}`}${l.suffix}`)).join('\n') + '\n');

// Well-formed trees rendered as block YAML, some with one line shifted or one scalar swapped.
type Tree = { [k: string]: string | null | Tree | Tree[] };
const { tree } = fc.letrec<{ tree: Tree; node: string | null | Tree | Tree[] }>((tie) => ({
  tree: fc.dictionary(key, tie('node'), { minKeys: 1, maxKeys: 4 }) as fc.Arbitrary<Tree>,
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, fc.constant(null), tie('tree'), fc.array(tie('tree') as fc.Arbitrary<Tree>, { minLength: 1, maxLength: 3 })) as fc.Arbitrary<string | null | Tree | Tree[]>,
}));
function render(t: Tree, indent: number, firstPrefix = ''): string[] {
  const out: string[] = [];
  let first = true;
  for (const [k, v] of Object.entries(t)) {
    const pad = first && firstPrefix ? firstPrefix : ' '.repeat(indent);
    first = false;
    if (v === null) out.push(`${pad}${k}:`);
    else if (typeof v === 'string') out.push(`${pad}${k}: ${v}`);
    else if (Array.isArray(v)) {
      out.push(`${pad}${k}:`);
      for (const item of v) out.push(...render(item, indent + 4, `${' '.repeat(indent + 2)}- `));
    } else {
      out.push(`${pad}${k}:`);
      out.push(...render(v, indent + 2));
    }
  }
  return out;
}
const treeDoc = fc
  .tuple(tree, fc.integer({ min: -1, max: 30 }), fc.integer({ min: -2, max: 2 }), fc.integer({ min: -1, max: 30 }), fc.integer({ min: -1, max: 30 }), fc.integer({ min: 0, max: 8 }))
  .map(([t, at, shift, commentAt, trailAt, commentIndent]) => {
    const lines = render(t, 0);
    if (at >= 0 && at < lines.length && shift !== 0) {
      const l = lines[at]!;
      lines[at] = shift > 0 ? ' '.repeat(shift) + l : l.replace(new RegExp(`^ {0,${-shift}}`), '');
    }
    // A trailing comment on one line, a comment line between two.
    if (trailAt >= 0 && trailAt < lines.length) lines[trailAt] += ' # trailing: x';
    if (commentAt >= 0 && commentAt <= lines.length) lines.splice(commentAt, 0, `${' '.repeat(commentIndent)}# - name: c`);
    return lines.join('\n') + '\n';
  });
const doc = fc.oneof(randomDoc, treeDoc, treeDoc);

test('property: when the fast path answers, it is the full parser\'s answer', (t) => {
  let answered = 0;
  fc.assert(
    fc.property(doc, (text) => {
      const fast = parsePlainYaml(text);
      if (fast === undefined) return true;
      answered++;
      t.deepEqual({ ok: fast }, full(text), JSON.stringify(text));
      return true;
    }),
    { numRuns: 20_000 },
  );
  t.true(answered > 1000, `the fast path answered ${answered} documents`);
});
