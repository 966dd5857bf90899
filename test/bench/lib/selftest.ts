// The oracle checks itself before a run: a world whose states are right must pass, and worlds
// with a wrong, missing or extra state must each be caught. A checker that accepts anything
// would make every run look correct.
import { checkWorld, expectedStates, modelRule, packageRule, readContainer, type World } from './oracle.js';

function world(): World {
  return {
    revision: 1,
    containersByModel: new Map([
      ['a', ['running', 'running']],
      ['b', ['dead', 'running']],
      ['c', ['paused']],
      ['d', []],
    ]),
    packages: new Map([
      ['p1', ['a', 'b']],
      ['p2', ['c']],
      ['p3', ['d']],
    ]),
    listedModels: new Set(['a', 'b', 'c', 'd']),
    modelStates: new Map([
      ['a', 'Running'],
      ['b', 'Dead'],
      ['c', 'Paused'],
      ['d', 'Created'],
    ]),
    packageStates: new Map([
      ['p1', 'Degraded'],
      ['p2', 'Paused'],
      ['p3', 'Idle'],
    ]),
  };
}

export function oracleSelfTest(): string[] {
  const problems: string[] = [];
  const expect = (cond: boolean, what: string): void => {
    if (!cond) problems.push(what);
  };
  const ok = world();
  expect(checkWorld(ok).ok, 'a correct world is rejected');
  expect(checkWorld(ok, expectedStates(ok, { model: () => undefined, package: () => undefined })).ok, 'a correct cold-start world is rejected');
  const wrong = world();
  wrong.modelStates.set('a', 'Paused');
  expect(!checkWorld(wrong).ok, 'a wrong model state is accepted');
  const wrongPkg = world();
  wrongPkg.packageStates.set('p1', 'Running');
  expect(!checkWorld(wrongPkg).ok, 'a wrong package state is accepted');
  const missing = world();
  missing.modelStates.delete('c');
  expect(!checkWorld(missing).ok, 'a missing model state is accepted');
  const extra = world();
  extra.packageStates.set('ghost', 'Running');
  expect(!checkWorld(extra).ok, 'a state without a definition is accepted');
  const stale = world();
  stale.containersByModel.set('c', ['exited']);
  expect(!checkWorld(stale).ok, 'a state that no longer matches its containers is accepted');
  // Rules spot checks (contract section 2).
  expect(modelRule(undefined, []) === 'Created' && modelRule('Running', []) === 'Exited', 'model rule 2');
  expect(modelRule('Running', ['created', 'created']) === 'Running' && modelRule(undefined, ['created']) === 'Created', 'model rule 3');
  expect(modelRule('Running', ['running', 'unknown']) === 'Dead', 'model rule 1');
  expect(packageRule(undefined, ['Created', 'Created']) === 'Idle' && packageRule('Running', ['Created']) === 'Running', 'package rule 1');
  expect(packageRule(undefined, ['Dead', 'Dead']) === 'Error' && packageRule(undefined, ['Dead', 'Exited']) === 'Degraded', 'package rules 2-3');
  expect(packageRule(undefined, []) === 'Idle', 'package with no models');
  const c = readContainer(JSON.stringify({ state: { Status: ' Restarting ' }, annotation: { model: 'm' }, config: { model: 'x' } }));
  expect(c?.model === 'm' && c.status === 'running', 'container parsing');
  expect(readContainer(JSON.stringify({ state: { Running: 'true' }, config: { model: 'x' } }))?.status === 'running', 'Running flag');
  expect(readContainer(JSON.stringify({ state: { Running: 'TRUE' }, config: { model: 'x' } }))?.status === 'unknown', 'Running flag other than "true"');
  expect(readContainer(JSON.stringify({ state: {} })) === undefined, 'container without model');
  return problems;
}
