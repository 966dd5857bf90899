// etcd refused our user name or password. Every Authenticate is a bcrypt check on etcd (tens of
// milliseconds of its CPU), and the nine informers, the probe and the leader election each tried
// again about once a second: with a wrong password one statemanager kept half a core of the
// shared etcd busy (measured by black-box probing). After a refusal every caller gets the same
// refusal at once until a backoff has passed (1 s doubling to 60 s); then the next caller tries.
// Anything else (etcd unreachable, a deadline) is not held: callers back off on their own.
import { errorMessage } from '../../controller/errors.js';

/** etcd's ErrGRPCAuthFailed: the credentials themselves were refused. */
export function isCredentialRefusal(err: unknown): boolean {
  return /authentication failed|invalid user ID or password/i.test(errorMessage(err));
}

export class AuthBackoff {
  private failures = 0;
  private until = 0;
  private refusal: unknown;

  constructor(
    private readonly baseMs = 1_000,
    private readonly capMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The refusal to give at once while the backoff runs, else undefined (try). */
  held(): unknown {
    return this.failures > 0 && this.now() < this.until ? this.refusal : undefined;
  }

  /** An attempt ended: a credential refusal starts (or lengthens) the backoff, a success ends it. */
  settled(err?: unknown): void {
    if (err === undefined) {
      this.failures = 0;
      return;
    }
    if (!isCredentialRefusal(err)) return;
    this.failures++;
    this.refusal = err;
    this.until = this.now() + Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.failures - 1, 30));
  }

  /** Wraps an authentication: held refusals are returned at once, outcomes recorded. */
  async run<T>(authenticate: () => Promise<T>): Promise<T> {
    const held = this.held();
    if (held !== undefined) throw held;
    try {
      const v = await authenticate();
      this.settled();
      return v;
    } catch (err) {
      this.settled(err);
      throw err;
    }
  }
}
