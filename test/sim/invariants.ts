// What must hold at quiescence, read from the fake etcd's contents and commit log and from the
// ActionController's call log — never from the code under test's own view.
import type { RepeatPolicy } from '../../reconcilers/reconcile-request-reconciler.js';
import type { AcCall } from './action-controller.js';
import type { Commit, FakeEtcdServer } from './fake-etcd.js';
import { checkStates, type World } from './oracle.js';

export interface FaultMark {
  at: number;
  kind: string;
}

export interface CheckInput {
  server: FakeEtcdServer;
  /** Connection ids of statemanager processes (every incarnation). */
  replicaConns: ReadonlySet<string>;
  historyLength: number;
  liveness: boolean;
  calls: readonly AcCall[];
  /** scenario name in a Reconcile call → package. */
  packageOfScenario(scenario: string): string;
  faults: readonly FaultMark[];
  repeat: RepeatPolicy;
  endAt: number;
}

const STATE_KEY = /^\/(model|package)\/(.+)\/state$/;
const LEADER_KEY = '/statemanager/leader';
/** Faults after which a second Reconcile for one entry into Error is the documented price of at-least-once. */
const DUPLICATING = new Set(['crash', 'depose', 'etcd-down', 'etcd-slow', 'slow-replica', 'hold-watches', 'break-watches', 'cancel-watches', 'compact']);

export function worldOf(server: FakeEtcdServer): World {
  return {
    get: (k) => server.data.get(k)?.value,
    keys: (prefix) => [...server.data.keys()].filter((k) => k.startsWith(prefix)).sort(),
  };
}

export function checkAll(i: CheckInput): string[] {
  return [...checkStates(worldOf(i.server), i.liveness), ...checkCommits(i), ...checkHistory(i), ...checkDeliveries(i)];
}

/** Per commit of a statemanager process: it led at that revision, changed what it wrote, kept history and the request with the state. */
export function checkCommits(i: CheckInput): string[] {
  const out: string[] = [];
  let leaderLease: string | undefined;
  for (const c of i.server.log) {
    if (i.replicaConns.has(c.writer)) {
      const touchesOthers = c.changes.some((ch) => ch.key !== LEADER_KEY);
      const owner = leaderLease === undefined ? undefined : i.server.leaseOwner(leaderLease);
      if (touchesOthers && owner !== c.writer) out.push(`revision ${c.revision}: ${c.writer} wrote ${c.changes.map((x) => x.key).join(', ')} while ${owner ?? 'nobody'} led`);
      checkStateWrites(c, i.historyLength, out);
    }
    for (const ch of c.changes) if (ch.key === LEADER_KEY) leaderLease = ch.type === 'Put' ? ch.kv!.lease : undefined;
  }
  return out;
}

function checkStateWrites(c: Commit, historyLength: number, out: string[]): void {
  for (const ch of c.changes) {
    const m = STATE_KEY.exec(ch.key);
    if (!m || ch.type !== 'Put') continue;
    const kv = ch.kv!;
    if (ch.prev?.value === kv.value) out.push(`revision ${c.revision}: ${ch.key} rewritten with the value it had (${kv.value})`);
    const seq = String(kv.version).padStart(12, '0');
    if (historyLength > 0 && !c.changes.some((x) => x.type === 'Put' && x.key === `/statemanager/history/${m[1]}/${m[2]}/${seq}`)) out.push(`revision ${c.revision}: ${ch.key} version ${kv.version} written without its history entry`);
    if (m[1] === 'package' && kv.value === 'Error' && ch.prev?.value !== 'Error' && !c.changes.some((x) => x.type === 'Put' && x.key === `/statemanager/reconcile/${m[2]}`)) {
      out.push(`revision ${c.revision}: package ${m[2]} entered Error without its reconcile request in the same transaction`);
    }
  }
}

/** Each state key's history: contiguous sequence numbers up to its version, each entry starting where the last ended. */
export function checkHistory(i: CheckInput): string[] {
  const out: string[] = [];
  const data = i.server.data;
  for (const kv of data.values()) {
    const m = STATE_KEY.exec(kv.key);
    if (!m || i.historyLength === 0) continue;
    const prefix = `/statemanager/history/${m[1]}/${m[2]}/`;
    const entries = [...data.values()].filter((h) => h.key.startsWith(prefix) && !h.key.slice(prefix.length).includes('/')).sort((a, b) => (a.key < b.key ? -1 : 1));
    const seqs = entries.map((h) => Number(h.key.slice(prefix.length)));
    const want = Math.min(i.historyLength, kv.version);
    const expected = Array.from({ length: want }, (_, k) => kv.version - want + 1 + k);
    if (seqs.join() !== expected.join()) {
      out.push(`${kv.key} (version ${kv.version}): history ${seqs.join(',') || 'empty'}, expected ${expected.join(',')}`);
      continue;
    }
    const parsed = entries.map((h) => JSON.parse(h.value) as { from: string | null; to: string });
    for (let k = 1; k < parsed.length; k++) {
      if (parsed[k]!.from !== parsed[k - 1]!.to) out.push(`${kv.key}: history entry ${seqs[k]} starts at ${parsed[k]!.from}, the one before ended at ${parsed[k - 1]!.to}`);
    }
    const last = parsed[parsed.length - 1];
    if (last && last.to !== kv.value) out.push(`${kv.key}: holds ${kv.value}, its last history entry says ${last.to}`);
  }
  return out;
}

interface Episode {
  entryRevision: number;
  entryAt: number;
  exitAt: number | undefined;
  /** The package was removed (its definition gone) after it: no call is owed. */
  removed: boolean;
}

/**
 * Every entry into Error reached the ActionController (also one left before its call), and no call came without one. Counted per
 * package, not per entry: a call decided for one entry may arrive after the package left Error and
 * entered it again (then it counts for the new entry too). At most, per package: for each entry,
 * one call, the repeats the policy allows in its duration, and one per fault during it that can
 * cost a documented duplicate; plus one per call the ActionController took whose caller never
 * heard back.
 */
export function checkDeliveries(i: CheckInput): string[] {
  const out: string[] = [];
  const episodes = new Map<string, Episode[]>();
  for (const c of i.server.log) {
    for (const ch of c.changes) {
      const m = STATE_KEY.exec(ch.key);
      if (!m || m[1] !== 'package') continue;
      const was = ch.prev?.value === 'Error';
      const is = ch.type === 'Put' && ch.kv!.value === 'Error';
      const list = episodes.get(m[2]!) ?? [];
      if (!was && is) list.push({ entryRevision: c.revision, entryAt: c.at, exitAt: undefined, removed: false });
      if (was && !is && list.length > 0) list[list.length - 1]!.exitAt = c.at;
      // A package removed (its definition gone) is owed no call for the entries before.
      if (ch.type !== 'Put') for (const ep of list) ep.removed = true;
      episodes.set(m[2]!, list);
    }
  }
  const accepted = new Map<string, AcCall[]>();
  for (const call of i.calls) {
    if (!call.accepted) continue;
    const pkg = i.packageOfScenario(call.scenario);
    if (!(episodes.get(pkg) ?? []).some((e) => e.entryRevision <= call.revision)) {
      out.push(`Reconcile for ${call.scenario} (package ${pkg}) at revision ${call.revision} by ${call.replica}: the package never entered Error before`);
    }
    accepted.set(pkg, [...(accepted.get(pkg) ?? []), call]);
  }
  for (const [pkg, list] of episodes) {
    const calls = accepted.get(pkg) ?? [];
    // Every entry is called, also one the package left before its call was made (contract
    // section 3: sent when a package enters Error); not one of a package removed since.
    for (const ep of list) {
      if (ep.removed || calls.some((c) => c.revision >= ep.entryRevision)) continue;
      out.push(`package ${pkg} entered Error at revision ${ep.entryRevision}${ep.exitAt === undefined ? ' and is still there' : ' and left it'}, but the ActionController never got it`);
    }
    let allowed = calls.filter((c) => !c.answered).length;
    for (const ep of list) {
      const until = ep.exitAt ?? i.endAt;
      allowed += 1 + repeatsWithin(i.repeat, until - ep.entryAt) + i.faults.filter((f) => DUPLICATING.has(f.kind) && f.at >= ep.entryAt - 3000 && f.at <= until).length;
    }
    if (calls.length > allowed) out.push(`package ${pkg}: ${calls.length} Reconcile calls for ${list.length} entries into Error, at most ${allowed} allowed`);
  }
  return out;
}

function repeatsWithin(p: RepeatPolicy, ms: number): number {
  if (p.initialMs <= 0) return 0;
  let n = 0;
  let t = 0;
  for (let d = p.initialMs; ; d = Math.min(p.capMs, d * 2)) {
    t += d;
    if (t > ms) return n;
    n++;
  }
}
