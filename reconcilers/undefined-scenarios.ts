// Scenario states whose scenario has no definition (`Scenario/{name}` absent or invalid).
// A requested absent → Idle needs no definition (the contract checks none), so without a bound
// one caller could make statemanager hold any number of them, each kept for good in etcd and in
// every replica's caches: this count is what the gRPC write path bounds. Kept as a set of names
// (not a counter) so a repeated or synthetic event cannot make it drift.
import type { Fleet } from './fleet.js';

export interface ScenarioDefinitions {
  /** Whether `Scenario/{name}` is in the caches (a valid definition). */
  isScenarioDefined(name: string): boolean;
  /** Scenario states held whose scenario has no definition. */
  undefinedScenarioStates(): number;
}

export class UndefinedScenarios implements ScenarioDefinitions {
  private readonly names = new Set<string>();

  constructor(private readonly fleet: Fleet) {
    const keys = fleet.keys;
    fleet.onChange('scenarioStates', (e) => {
      const name = keys.parseStateKey('scenario', e.key);
      if (name !== undefined) this.recount(name);
    });
    fleet.onChange('scenarioDefs', (e) => {
      const name = keys.parseScenarioDefKey(e.key);
      if (name !== undefined) this.recount(name);
    });
  }

  isScenarioDefined(name: string): boolean {
    return this.fleet.isScenarioDefined(name);
  }

  undefinedScenarioStates(): number {
    return this.names.size;
  }

  /** From the caches' level, whatever the event was. */
  private recount(name: string): void {
    if (this.fleet.storedState('scenario', name) !== undefined && !this.fleet.isScenarioDefined(name)) this.names.add(name);
    else this.names.delete(name);
  }
}
