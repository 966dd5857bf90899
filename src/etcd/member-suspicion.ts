// Which etcd members etcd3's calls avoid for a while: a member that let a call wait a long time
// and then ran out of its deadline (a hung member: SIGSTOPped, swapping, its disk stalled; its
// connections stay open and its kernel still accepts new ones, so neither keepalive nor a
// reconnect finds anything wrong). etcd3 picks a member at random per call and, since a deadline
// says nothing about the connection (PER_CALL_FAILURES_KEEP_CONNECTIONS in client.ts), kept
// sending a third of the calls to such a member: found by black-box probing, one member of three
// SIGSTOPped for 60 s made 10–25 % of SendStateChange calls fail, /readyz flap and elections
// time out, while the other two answered at once.
//
// A suspect member is skipped while another member is not suspect (so every member suspect is
// still called; with one etcd nothing is tracked). A call it answers, even with an error of etcd's, clears it. The time
// it is skipped doubles each time it is found hung again, up to a cap, and starts again from the
// first once it answers.
import { GRPCDeadlineExceededError } from 'etcd3';
import { classifyEtcdError } from './errors.js';

export interface MemberSuspicionOptions {
  /** Members as given to etcd3 (its host policy factory is called with each). */
  members: readonly string[];
  /** A deadline failure after waiting at least this long makes the member suspect (a short deadline says nothing). */
  slowCallMs: number;
  /** How long a member is first skipped; doubled each time it is found hung again. */
  suspectForMs: number;
  /** The longest a member is skipped at once. */
  maxSuspectForMs: number;
  /** Told when a member becomes suspect, and for how long. */
  onSuspect?: (member: string, forMs: number) => void;
  /** Told when a suspect member answered again. */
  onCleared?: (member: string) => void;
  /** The clock of the skips, in monotonic ms: a step of the wall clock must not stretch or cut an interval (default performance.now). */
  now?: () => number;
}

/** Thrown, without calling the member, so that etcd3 goes on to the next member. */
export class MemberSkippedError extends Error {
  constructor(readonly member: string) {
    super(`etcd member ${member} is skipped: it let a call run out of its deadline`);
  }
}

interface Suspicion {
  /** When it was found hung (calls in flight before then are the same hang, not a new one). */
  since: number;
  until: number;
  /** How many times in a row it was found hung (the skip doubles with each). */
  strikes: number;
}

export class MemberSuspicion {
  private readonly suspects = new Map<string, Suspicion>();
  private readonly now: () => number;

  constructor(private readonly o: MemberSuspicionOptions) {
    this.now = o.now ?? (() => performance.now());
  }

  /** Whether a call should skip `member` now: it is suspect and another member is not. */
  skips(member: string): boolean {
    const s = this.suspects.get(member);
    if (s === undefined || this.now() >= s.until) return false;
    return this.o.members.some((m) => m !== member && !this.isSuspect(m));
  }

  /** Members skipped now (for the readiness detail and tests). */
  suspected(): string[] {
    return this.o.members.filter((m) => this.isSuspect(m));
  }

  /** A call to `member` was answered: it is alive. */
  answered(member: string): void {
    if (this.suspects.delete(member)) this.o.onCleared?.(member);
  }

  /** A call to `member` failed after `waitedMs`. */
  failed(member: string, err: unknown, waitedMs: number): void {
    if (!(err instanceof GRPCDeadlineExceededError)) {
      // etcd answered (a refusal of its own): the member is alive. A connection failure is
      // etcd3's to handle (it closes the member's clients and goes on).
      const kind = classifyEtcdError(err);
      if (kind !== 'unavailable' && kind !== 'timeout') this.answered(member);
      return;
    }
    // One etcd: there is nowhere else to send calls, and nothing to tell.
    if (waitedMs < this.o.slowCallMs || this.o.members.length < 2) return;
    const now = this.now();
    const before = this.suspects.get(member);
    // The calls that were in flight when the member was found hung run out one after another:
    // each is the same hang, not a new one (counted as new, the first hang skipped it for 60 s at
    // once, and a line each: found by black-box probing).
    if (before !== undefined && now < before.until && now - waitedMs < before.since) return;
    const strikes = (before?.strikes ?? 0) + 1;
    const forMs = Math.min(this.o.maxSuspectForMs, this.o.suspectForMs * 2 ** (strikes - 1));
    this.suspects.set(member, { since: now, until: now + forMs, strikes });
    this.o.onSuspect?.(member, forMs);
  }

  /**
   * etcd3's per-member policy (its `faultHandling.host`) for `member`: skip it while suspect,
   * otherwise call it and learn from the outcome. `inner` is the policy it wraps.
   */
  policy<P extends { execute<T>(fn: (context: { signal: AbortSignal; attempt: number }) => PromiseLike<T> | T): Promise<T> }>(member: string, inner: P): P {
    const execute = async <T>(fn: (context: { signal: AbortSignal; attempt: number }) => PromiseLike<T> | T): Promise<T> => {
      if (this.skips(member)) throw new MemberSkippedError(member);
      const started = this.now();
      try {
        const result = await inner.execute(fn);
        // A stream (a lease's keep-alive) is opened without the member saying anything: only a
        // unary call's answer shows it is alive.
        if (!isStream(result)) this.answered(member);
        return result;
      } catch (err) {
        this.failed(member, err, this.now() - started);
        throw err;
      }
    };
    return { ...inner, execute } as P;
  }

  private isSuspect(member: string): boolean {
    const s = this.suspects.get(member);
    return s !== undefined && this.now() < s.until;
  }
}

function isStream(result: unknown): boolean {
  return typeof result === 'object' && result !== null && typeof (result as { on?: unknown }).on === 'function';
}
