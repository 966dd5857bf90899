// Requested scenario transitions (contract section 3), in the domain: the precondition and the
// transition table checked against the stored state, then a compare-and-swap with its history
// entry; on a lost race the state is read again and every check runs again, so of two
// identical concurrent requests exactly one succeeds. Reported through the domain observer
// (logged and counted like every other transition). Transport concerns (authentication,
// error codes) stay with the caller, which may veto a transition through `authorize`.
import type { DomainObserver, Clock, StateStore, StoredRevision } from '../../reconcilers/ports.js';
import { scenarioTransitionAllowed } from '../../domain/rules.js';
import type { ScenarioState } from '../../domain/states.js';

export interface ScenarioStateRead {
  state: ScenarioState | undefined;
  revision: StoredRevision | undefined;
  /** The create revision of the scenario's definition key (`Scenario/{name}`), when it has one. */
  definedAt?: number;
  /**
   * Whether a definition existed when the state was last written; asked only when the definition
   * was created after that write, undefined when not asked or not known (compacted).
   */
  definedAtWrite?: boolean;
}

/** The stored scenario state, read fresh (a follower may serve the request). */
export interface ScenarioStateReader {
  /** `callerDeadline` (epoch ms): the read does not outlive the client's deadline. */
  read(name: string, callerDeadline?: number): Promise<ScenarioStateRead>;
}

/**
 * A state last written under an earlier definition of the scenario, which was since deleted and
 * created again: it belongs to the withdrawn scenario, and the new one starts from nothing. One
 * written while no definition existed (a request ahead of the API server's definition write) is
 * the scenario's own; when etcd no longer knows, it is taken as withdrawn.
 */
export function withdrawnState(read: ScenarioStateRead): boolean {
  return read.state !== undefined && read.definedAt !== undefined && read.revision !== undefined && read.definedAt > read.revision.modRevision && read.definedAtWrite !== false;
}

export interface ScenarioChange {
  name: string;
  target: ScenarioState;
  /** The state the caller expects to be stored; undefined: whatever is stored. */
  current: ScenarioState | undefined;
  /** Who says they asked (the request's `source`), for the history. */
  source: string;
  /** Who was authenticated as asking, for the history. */
  identity: string;
  transitionId: string;
  /** The client's deadline (epoch ms), if any. */
  callerDeadline?: number;
}

export type ScenarioRefusal = 'denied' | 'precondition_failed' | 'invalid_transition' | 'contended' | 'over_limit';

export type ScenarioChangeOutcome =
  | { ok: true; from: ScenarioState | undefined; to: ScenarioState; revision: number }
  | { ok: false; refusal: ScenarioRefusal; message: string; details: string };

export interface ScenarioChangerOptions {
  reader: ScenarioStateReader;
  store: Pick<StateStore, 'writeState'>;
  observer: DomainObserver;
  clock: Clock;
  /** Compare-and-swap attempts before answering `contended`. */
  maxAttempts: number;
  /**
   * Asked before a state is created (absent → Idle); a refusal detail refuses it (`over_limit`).
   * Checked after the contract's checks, so a request they refuse is told that first.
   */
  admitNew?: (name: string) => string | undefined;
}

/** History reason of a state written over one its scenario's withdrawal left behind. */
export const WITHDRAWN_REASON = 'requested: the scenario was defined again after its last state';

export class ScenarioChanger {
  constructor(private readonly o: ScenarioChangerOptions) {}

  /**
   * `authorize` sees the state the caller says it changes from (or the stored one) and returns
   * a refusal detail to deny. Throws when the store fails (the outcome may then be unknown).
   */
  async change(req: ScenarioChange, authorize: (from: ScenarioState | undefined) => string | undefined = () => undefined): Promise<ScenarioChangeOutcome> {
    for (let attempt = 1; attempt <= this.o.maxAttempts; attempt++) {
      const read = await this.o.reader.read(req.name, req.callerDeadline);
      const { revision } = read;
      // A state last written before the scenario's definition was created (again) belongs to the
      // scenario that was withdrawn: the new one starts from nothing. Pullpiri's apiserver
      // withdraws by deleting `Scenario/{name}` and applies again with "" -> idle; the withdrawn
      // one's Completed made that an invalid transition for good (a Pullpiri compatibility probe).
      // The write is still guarded by the stored key's revision.
      const withdrawn = withdrawnState(read);
      const stored = withdrawn ? undefined : read.state;
      const refusal = this.check(req, read.state, withdrawn, authorize);
      if (refusal) return refusal;
      const at = new Date(this.o.clock.now()).toISOString();
      const outcome = await this.o.store.writeState({
        kind: 'scenario',
        name: req.name,
        to: req.target,
        expected: revision,
        history: { kind: 'scenario', name: req.name, from: stored ?? null, to: req.target, at, reason: withdrawn ? WITHDRAWN_REASON : 'requested', source: req.source, identity: req.identity, transitionId: req.transitionId, drawn: true },
      });
      if (outcome.committed) {
        // The change's one line, with who asked (a second line from the gRPC handler doubled every
        // scenario change in the log: black-box probing).
        this.o.observer.transition('scenario', req.name, stored ?? null, req.target, `requested by ${req.source}${withdrawn ? ` (${WITHDRAWN_REASON}; it was ${read.state})` : ''}`, {
          source: req.source,
          transitionId: req.transitionId,
          identity: req.identity,
          revision: outcome.revision,
        });
        return { ok: true, from: stored, to: req.target, revision: outcome.revision };
      }
    }
    return {
      ok: false,
      refusal: 'contended',
      message: 'the stored state kept changing',
      details: `scenario ${req.name} changed concurrently ${this.o.maxAttempts} times; nothing was written`,
    };
  }

  /**
   * Authorization, then the precondition (against the state as stored, as every read shows it),
   * then the transition table (from nothing when the stored state is a withdrawn scenario's).
   */
  private check(req: ScenarioChange, asStored: ScenarioState | undefined, withdrawn: boolean, authorize: (from: ScenarioState | undefined) => string | undefined): ScenarioChangeOutcome | undefined {
    const stored = withdrawn ? undefined : asStored;
    // Authorized against the state the caller says it changes from: if that differs from the
    // stored one the precondition refuses the request anyway.
    const denied = authorize(req.current ?? stored);
    if (denied !== undefined) return { ok: false, refusal: 'denied', message: 'permission denied', details: denied };
    if (req.current !== undefined && req.current !== asStored) {
      return {
        ok: false,
        refusal: 'precondition_failed',
        message: 'current_state does not match the stored state',
        details: `current_state is ${req.current} but scenario ${req.name} is ${asStored ?? 'absent (no stored state)'}`,
      };
    }
    if (!scenarioTransitionAllowed(stored, req.target)) {
      const why = withdrawn ? ` (its ${asStored} was written before the scenario was defined again: it starts from nothing)` : '';
      return {
        ok: false,
        refusal: 'invalid_transition',
        message: 'invalid state transition',
        details:
          stored === req.target ? `scenario ${req.name} is already ${stored}` : `scenario ${req.name}: ${stored ?? 'absent'} -> ${req.target} is not a scenario transition${why}`,
      };
    }
    const overLimit = stored === undefined ? this.o.admitNew?.(req.name) : undefined;
    if (overLimit !== undefined) return { ok: false, refusal: 'over_limit', message: 'too many scenario states without a definition', details: overLimit };
    return undefined;
  }
}
