// Reading stored or requested state names (contract section 1): case-insensitive, Pullpiri's enum
// spellings, anything else absent.
import test from 'ava';
import { parseState, type ResourceKind } from '../../domain/states.js';

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
