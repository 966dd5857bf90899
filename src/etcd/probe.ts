// Is etcd answering, and does it take writes? A cheap count-only range every 2 s (every second
// while it is not, or while an alarm is raised), for the readiness check, and etcd's alarm list.
// An etcd out of space (NOSPACE) or corrupt (CORRUPT) still answers reads, so reachability
// alone would not tell an operator why no state is written; the alarms are logged once each
// way, shown as a gauge, and when the last one is cleared every key is retried at once instead
// of when its backoff ends (up to `controller.backoffCap`).
import type { Etcd3 } from 'etcd3';
import type { Logger } from '../../controller/logger.js';
import type { Runnable } from '../../controller/manager.js';
import { errorMessage } from '../../controller/errors.js';
import { classifyEtcdError } from './errors.js';
import { isPerCallFailure } from './client.js';

/** The alarms etcd raises (rpc.proto AlarmType), each with what an operator does about it. */
export const ETCD_ALARMS = {
  NOSPACE: 'etcd is out of space and refuses every write: compact, defragment, then disarm the alarm (etcdctl alarm disarm)',
  CORRUPT: 'a member found its data inconsistent and the cluster refuses writes: see etcd\'s corruption recovery',
} as const;
export type EtcdAlarm = keyof typeof ETCD_ALARMS;

function alarmOf(name: string): EtcdAlarm | undefined {
  const upper = name.toUpperCase();
  return upper in ETCD_ALARMS ? (upper as EtcdAlarm) : undefined;
}

/**
 * The alarms in a StatusResponse's `errors`, one `memberID:<id> alarm:<NAME> ` per member and
 * alarm (etcd 3.4 and 3.5 print an AlarmMember so); the other errors ("etcdserver: no leader") are
 * not alarms.
 */
export function alarmsInStatus(errors: readonly string[]): { member: string; alarm: string }[] {
  const out: { member: string; alarm: string }[] = [];
  for (const e of errors) {
    const m = /^memberID:(\S+)\s+alarm:(\S+)/.exec(e.trim());
    if (m) out.push({ member: m[1]!, alarm: m[2]! });
  }
  return out;
}

export interface EtcdProbeOptions {
  client: Etcd3;
  /** A key to range over (count only). */
  key: string;
  logger: Logger;
  /** Members with each alarm raised, every time the alarms are read. */
  alarmGauge?: (alarm: EtcdAlarm, members: number) => void;
  /** The last raised alarm was cleared: etcd takes writes again. */
  onAlarmsCleared?: () => void;
  /** etcd's current revision, at each read of its status (every look that found it reachable). */
  revisionGauge?: (revision: number) => void;
  /** Default 2000 (1000 while unreachable or alarmed). */
  intervalMs?: number;
  /**
   * Look once more when a look ran out of its deadline (several members: the client skips the
   * member that let it wait, client.ts), so one hung member is not a 503 while the others answer.
   */
  lookAgainAfterDeadline?: boolean;
  /** Monotonic clock in ms (tests); performance.now by default. */
  now?: () => number;
}

/** How long one look at etcd may take. */
export const LOOK_DEADLINE_MS = 2000;
/** A look whose timer fired this late: a failure to answer in time may be this process's own. */
export const HELD_MS = 1000;
/** Switches between clusters within MIXED_WINDOW_MS that mean endpoints of two clusters at once (restores are minutes apart). */
export const MIXED_SWITCHES = 5;
export const MIXED_WINDOW_MS = 60_000;
/** No switch for this long: one cluster again (said), and a later mix is said again. */
export const QUIET_MS = 300_000;
/** Members named per cluster in the error line. */
const MAX_MEMBERS_NAMED = 8;

export class EtcdProbe implements Runnable {
  readonly name = 'etcd-probe';
  readonly needLeaderElection = false;
  private reachableNow = false;
  /** The last look failed because etcd refused our credentials or permissions. */
  private refusedNow = false;
  private looked = false;
  /** Members per raised alarm, as last read. */
  private raised = new Map<EtcdAlarm, number>();
  private alarmsUnreadable = false;
  /** The etcd cluster the last status came from, every one seen with the members that answered for it, and when the answers last switched between clusters (see noteCluster). */
  private clusterNow: string | undefined;
  private readonly clustersSeen = new Map<string, Set<string>>();
  private switches: number[] = [];
  private mixedClustersSaid = false;
  private timer: NodeJS.Timeout | undefined;
  /** When the next look's timer is due (the monotonic clock), to tell how late it fired. */
  private dueAt: number | undefined;
  /** The last failure was put down to this process being held, not yet to etcd. */
  private blamedProcess = false;
  private stopped = false;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(private readonly o: EtcdProbeOptions) {
    this.intervalMs = o.intervalMs ?? 2000;
    this.now = o.now ?? (() => performance.now());
  }

  reachable(): boolean {
    return this.reachableNow;
  }

  /** Whether the last look was refused for our credentials or permissions (etcd answers, but not us). */
  credentialsRefused(): boolean {
    return this.refusedNow;
  }

  /** Whether the last look found etcd not answering (false before the first look has ended). */
  knownUnreachable(): boolean {
    return this.looked && !this.reachableNow;
  }

  /** The alarms raised on some member, as last read. */
  alarms(): EtcdAlarm[] {
    return [...this.raised.keys()];
  }

  start(): void {
    void this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    const { logger } = this.o;
    // How late this look's timer fired: a process starved of CPU (a cgroup quota, a blocked event
    // loop) misses etcd's deadlines itself, and black-box probing found such a replica saying
    // `etcd unreachable` while etcd answered everyone else in under a millisecond.
    const startedAt = this.now();
    const lateMs = this.dueAt === undefined ? 0 : Math.max(0, Math.round(startedAt - this.dueAt));
    try {
      // Serializable: answered by the member itself. With `hasleader` (REQUIRE_LEADER in
      // client.ts) a member without a leader still refuses it and the range goes on to the next
      // member; a linearizable one sent to a member cut off from its cluster before it noticed
      // waited its whole deadline, and /readyz said 503 while the others served.
      await this.look().catch((err: unknown) => {
        if (this.o.lookAgainAfterDeadline && isPerCallFailure(err) && !this.stopped) return this.look();
        throw err;
      });
      if (!this.reachableNow) logger.info('etcd reachable');
      this.blamedProcess = false;
      this.reachableNow = true;
      this.refusedNow = false;
    } catch (err) {
      // A refusal of our credentials is told apart: nothing heals it but an operator.
      const refused = classifyEtcdError(err) === 'refused';
      // Held before the look (its timer fired late) or during it (it ended well past its deadline).
      const heldMs = Math.max(lateMs, Math.round(this.now() - startedAt - LOOK_DEADLINE_MS * (this.o.lookAgainAfterDeadline ? 2 : 1)));
      const held = heldMs >= HELD_MS && classifyEtcdError(err) === 'timeout';
      if (this.reachableNow || refused !== this.refusedNow || (this.blamedProcess && !held && !refused)) {
        this.blamedProcess = false;
        if (refused) logger.error("etcd refused statemanager's credentials or permissions", { error: errorMessage(err), fix: "check etcd.username and etcd.password (ETCD_USERNAME, ETCD_PASSWORD) and the user's role" });
        else if (held) {
          logger.warn('etcd did not answer in time, but this process was held itself (starved of CPU, or its event loop blocked): its timers ran late', { error: errorMessage(err), lateMs: heldMs });
          // Said again as etcd's once a look fails that was not held: a real outage is not hidden.
          this.blamedProcess = true;
        } else logger.warn('etcd unreachable', { error: errorMessage(err) });
      }
      this.reachableNow = false;
      this.refusedNow = refused;
    }
    this.looked = true;
    if (this.reachableNow) await this.readAlarms();
    if (this.stopped) return;
    const fast = !this.reachableNow || this.raised.size > 0;
    const delay = fast ? Math.min(1000, this.intervalMs) : this.intervalMs;
    this.dueAt = this.now() + delay;
    this.timer = setTimeout(() => void this.tick(), delay);
    this.timer.unref();
  }

  private async look(): Promise<void> {
    await this.o.client.kv.range({ key: Buffer.from(this.o.key), limit: 1, count_only: true, serializable: true }, { deadline: Date.now() + LOOK_DEADLINE_MS });
  }

  /**
   * Which cluster answered (each look's status comes from one member, etcd3's pick). Endpoints
   * that answer for two clusters at once (a member created again on its old URL as a cluster of
   * its own: leadership then flaps between the two, and before this nothing in the log said why,
   * black-box probing) switch between them again and again: MIXED_SWITCHES switches within
   * MIXED_WINDOW_MS are said at error, once, naming the members of each; said again only after
   * QUIET_MS without a switch. A new cluster id now and then is a restore (which may also bring
   * back an id seen before: etcd derives it from the peer URLs and the cluster token) and is an
   * info line.
   */
  private noteCluster(clusterId: string, memberId: string): void {
    const now = (this.o.now ?? performance.now.bind(performance))();
    const before = this.clusterNow;
    this.clusterNow = clusterId;
    let members = this.clustersSeen.get(clusterId);
    const seenBefore = members !== undefined;
    if (members === undefined) this.clustersSeen.set(clusterId, (members = new Set()));
    if (members.size < MAX_MEMBERS_NAMED) members.add(memberId);
    if (this.switches.length > 0 && now - this.switches[this.switches.length - 1]! > QUIET_MS) {
      if (this.mixedClustersSaid) this.o.logger.info('etcd endpoints answer for one cluster again', { clusterId });
      this.mixedClustersSaid = false;
      this.switches = [];
    }
    if (before === undefined || before === clusterId) return;
    this.switches.push(now);
    this.switches = this.switches.filter((at) => now - at <= MIXED_WINDOW_MS);
    if (!seenBefore) this.o.logger.info('etcd answers as another cluster (restored, or created again)', { clusterId, before, memberId });
    if (this.switches.length < MIXED_SWITCHES || this.mixedClustersSaid) return;
    this.mixedClustersSaid = true;
    this.o.logger.error('etcd endpoints answer for more than one etcd cluster: a member was created again as a cluster of its own', {
      clusters: Object.fromEntries([...this.clustersSeen].map(([id, m]) => [id, [...m]])),
      switches: this.switches.length,
      withinMs: MIXED_WINDOW_MS,
      fix: 'find the endpoint of the other cluster (etcdctl --endpoints=URL endpoint status, for each URL of ETCD_ENDPOINTS: its cluster id) and remove its URL from ETCD_ENDPOINTS (etcd.endpoints), or add that member back to the cluster (etcdctl member remove, then member add)',
    });
  }

  private async readAlarms(): Promise<void> {
    const { client, logger } = this.o;
    let raised: { alarm: string }[];
    try {
      // From the member's Status, which it answers from its own copy of the alarms: the Alarm
      // RPC, even a GET, is a Raft proposal (a WAL write and fsync on every member), which every
      // replica polling it would add to an idle cluster forever.
      const status = await client.maintenance.status({ deadline: Date.now() + 2000 });
      this.noteCluster(String(status.header.cluster_id), String(status.header.member_id));
      this.o.revisionGauge?.(Number(status.header.revision));
      raised = alarmsInStatus(status.errors ?? []);
      if (this.alarmsUnreadable) logger.info('etcd alarms readable again');
      this.alarmsUnreadable = false;
    } catch (err) {
      // Seen only when etcd went away between the two calls, or a proxy in front of it does not
      // pass the maintenance API on: keep what was read last.
      if (!this.alarmsUnreadable) logger.warn('cannot read etcd alarms', { error: errorMessage(err) });
      this.alarmsUnreadable = true;
      return;
    }
    const now = new Map<EtcdAlarm, number>();
    for (const m of raised) {
      const alarm = alarmOf(m.alarm);
      if (alarm) now.set(alarm, (now.get(alarm) ?? 0) + 1);
    }
    for (const [alarm, count] of now) {
      if (!this.raised.has(alarm)) logger.error('etcd alarm raised', { alarm, members: count, consequence: ETCD_ALARMS[alarm] });
    }
    for (const alarm of this.raised.keys()) if (!now.has(alarm)) logger.info('etcd alarm cleared', { alarm });
    const cleared = this.raised.size > 0 && now.size === 0;
    this.raised = now;
    for (const alarm of Object.keys(ETCD_ALARMS) as EtcdAlarm[]) this.o.alarmGauge?.(alarm, now.get(alarm) ?? 0);
    if (cleared) this.o.onAlarmsCleared?.();
  }
}
