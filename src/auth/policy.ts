// Authorization: does any rule whose identity pattern matches one of the caller's names allow
// this request? Whatever no rule allows is denied (an empty list denies everything). Without
// rules only anonymous callers are served (a setup without identities); the configuration
// refuses identities without rules, and a caller with an identity is denied here all the same.
import { parseState, type ResourceKind } from '../../domain/states.js';
import type { AuthRule, Permission } from './config.js';
import type { Caller } from './identity.js';

export type AuthzRequest =
  | {
      method: 'SendChangedContainerList';
      nodeName: string;
      /** The models the list's containers belong to (for `placedModelsOnly`). */
      models: readonly string[];
    }
  | { method: 'read'; call: string }
  /** `model` as the caller sent it (checked against `models` patterns before it is validated). */
  | { method: 'TriggerOffloading'; model: string }
  | {
      method: 'SendStateChange';
      kind: ResourceKind;
      name: string;
      /** Canonical stored state before the change; undefined when absent; ANY_STATE: not known yet. */
      from: string | undefined | typeof ANY_STATE;
      to: string;
    };

/**
 * `from` before the stored state is read: allowed when some rule allows the change from some
 * state, so a caller no rule could allow is refused before anything is read.
 */
export const ANY_STATE = Symbol('any state');

export type AuthzDecision = { allowed: true; rule?: number } | { allowed: false };

/** Where packages place their models (`spec.models[].node`), as the caller's caches know it. */
export interface ModelPlacement {
  isModelPlacedOn(model: string, node: string): boolean;
}

/** Without a placement source nothing counts as placed: `placedModelsOnly` fails closed. */
const NOWHERE: ModelPlacement = { isModelPlacedOn: () => false };

export class Authorizer {
  constructor(
    private readonly rules: readonly AuthRule[] | undefined,
    private readonly placement: ModelPlacement = NOWHERE,
  ) {}

  get enforcing(): boolean {
    return this.rules !== undefined;
  }

  authorize(caller: Caller, req: AuthzRequest): AuthzDecision {
    if (this.rules === undefined) return caller.via === 'anonymous' ? { allowed: true } : { allowed: false };
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i]!;
      for (const name of caller.names) {
        for (const p of rule.identities) {
          const match = matchPattern(p, name);
          if (match === undefined) continue;
          if (rule.allow.some((perm) => permits(perm, req, { match, identity: name }, this.placement))) return { allowed: true, rule: i };
        }
      }
    }
    return { allowed: false };
  }
}

/**
 * `pattern` against `text`: undefined when it does not match, else what `*` stood for ('' for a
 * literal pattern). `*` stands for one or more characters.
 */
export function matchPattern(pattern: string, text: string): string | undefined {
  const star = pattern.indexOf('*');
  if (star < 0) return pattern === text ? '' : undefined;
  const head = pattern.slice(0, star);
  const tail = pattern.slice(star + 1);
  if (text.length <= head.length + tail.length || !text.startsWith(head) || !text.endsWith(tail)) return undefined;
  return text.slice(head.length, text.length - tail.length);
}

/** Replaces `${match}` and `${identity}`; the values are taken literally. */
export function expandTemplate(template: string, vars: { match: string; identity: string }): string {
  return template.replace(/\$\{(match|identity)\}/g, (_, v: 'match' | 'identity') => vars[v]);
}

function permits(perm: Permission, req: AuthzRequest, vars: { match: string; identity: string }, placement: ModelPlacement): boolean {
  if (perm.method === '*') return true;
  if (perm.method !== req.method) return false;
  if (perm.method === 'read') return true;
  if (perm.method === 'SendChangedContainerList' && req.method === 'SendChangedContainerList') {
    if (perm.nodeName !== undefined && expandTemplate(perm.nodeName, vars) !== req.nodeName) return false;
    return !perm.placedModelsOnly || req.models.every((m) => placement.isModelPlacedOn(m, req.nodeName));
  }
  if (perm.method === 'TriggerOffloading' && req.method === 'TriggerOffloading') {
    return perm.models === undefined || perm.models.some((n) => matchPattern(n, req.model) !== undefined);
  }
  if (perm.method === 'SendStateChange' && req.method === 'SendStateChange') {
    if (perm.kind !== undefined && perm.kind !== req.kind) return false;
    if (perm.names !== undefined && !perm.names.some((n) => matchPattern(n, req.name) !== undefined)) return false;
    const from = req.from;
    if (perm.from !== undefined && from !== ANY_STATE && !perm.from.some((s) => sameState(req.kind, s, from))) return false;
    if (perm.to !== undefined && !perm.to.some((s) => sameState(req.kind, s, req.to))) return false;
    return true;
  }
  return false;
}

function sameState(kind: ResourceKind, configured: string, actual: string | undefined): boolean {
  if (actual === undefined) return configured.trim().toLowerCase() === 'absent';
  return parseState(kind, configured) === actual;
}
