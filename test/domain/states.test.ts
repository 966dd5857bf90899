// Reading stored or requested state names (contract section 1): case-insensitive, Pullpiri's enum
// spellings, anything else absent.
import test from 'ava';
import { nameNotUtf8, parseState, type ResourceKind } from '../../domain/states.js';

const ROWS: [ResourceKind, string | undefined | null, string | undefined][] = [
  ['model', 'Running', 'Running'],
  ['model', 'running', 'Running'],
  ['model', 'RUNNING', 'Running'],
  // Not trimmed: a padded value is none of the names (absent, and repaired).
  ['model', ' Dead\n', undefined],
  ['model', 'Running ', undefined],
  ['model', 'MODEL_STATE_RUNNING', 'Running'],
  ['model', 'model_state_created', 'Created'],
  ['model', 'MODEL_STATE_DEAD', 'Dead'],
  ['model', 'PACKAGE_STATE_RUNNING', undefined],
  ['model', 'Idle', undefined],
  ['model', 'Degraded', undefined],
  ['model', 'garbage', undefined],
  ['model', '', undefined],
  ['model', undefined, undefined],
  ['model', null, undefined],
  ['model', 'MODEL_STATE_', undefined],
  ['package', 'Degraded', 'Degraded'],
  ['package', 'error', 'Error'],
  ['package', 'PACKAGE_STATE_ERROR', 'Error'],
  ['package', 'package_state_idle', 'Idle'],
  ['package', 'Created', undefined],
  ['package', 'MODEL_STATE_RUNNING', undefined],
  ['scenario', 'Waiting', 'Waiting'],
  ['scenario', 'waiting', 'Waiting'],
  ['scenario', 'SCENARIO_STATE_WAITING', 'Waiting'],
  ['scenario', 'SCENARIO_STATE_COMPLETED', 'Completed'],
  ['scenario', 'Running', undefined],
  ['scenario', '{"state":"Idle"}', undefined],
];

for (const [kind, raw, want] of ROWS) {
  test(`parseState(${kind}, ${JSON.stringify(raw) ?? 'undefined'}) → ${want ?? 'undefined'}`, (t) => {
    const got: string | undefined = parseState(kind, raw);
    t.is(got, want);
  });
}

for (const [title, name, bad] of [
  ['plain ASCII', 'nav-map', false],
  ['U+D7FF, the last code unit before the surrogates', 'a\ud7ffb', false],
  ['a lone high surrogate (U+D800)', 'a\ud800b', true],
  ['a lone high surrogate at the end (U+DBFF)', 'ab\udbff', true],
  ['a lone low surrogate (U+DC00)', 'a\udc00b', true],
  ['a low surrogate before a high one', 'a\udc00\ud800b', true],
  ['a surrogate pair (U+DBFF U+DC00, one character)', 'a\udbff\udc00b', false],
  ['an emoji', 'map-😀', false],
  ['U+E000, the first code unit after the surrogates', 'a\ue000', false],
  ['U+FFFD, what bytes that are not UTF-8 read as', 'r\ufffdsume', true],
  ['U+FFFE and U+FFFC beside it', 'a\ufffe\ufffc', false],
] as const) {
  test(`nameNotUtf8: ${title} → ${bad}`, (t) => {
    t.is(nameNotUtf8(name), bad);
    // The check agrees with a round trip through UTF-8 bytes, as etcd's keys take a name, for
    // every name but U+FFFD itself, which the round trip keeps and the reads refuse.
    if (!name.includes('\ufffd')) t.is(Buffer.from(name, 'utf8').toString('utf8') !== name, bad);
  });
}
