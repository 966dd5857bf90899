// How many subscriptions are open, per identity and in total, so that one caller (or all of
// them) cannot hold more than the replica is sized for. Pure bookkeeping: the gRPC layer
// refuses with RESOURCE_EXHAUSTED what `take` refuses.
export interface SubscriptionQuotaLimits {
  perIdentity: number;
  total: number;
}

export type QuotaAnswer = { ok: true; release: () => void } | { ok: false; problem: string };

export class SubscriptionQuota {
  private readonly byIdentity = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: SubscriptionQuotaLimits) {}

  /** One more subscription for `identity`, or why not; `release` (once) gives it back. */
  take(identity: string): QuotaAnswer {
    const mine = this.byIdentity.get(identity) ?? 0;
    if (mine >= this.limits.perIdentity) {
      return { ok: false, problem: `${identity} has ${mine} subscriptions open, the most one identity may hold (grpc.limits.subscriptionsPerIdentity); close one first` };
    }
    if (this.total >= this.limits.total) {
      return { ok: false, problem: `this replica serves ${this.total} subscriptions, the most it holds (grpc.limits.subscriptionsTotal); retry later or on another replica` };
    }
    this.byIdentity.set(identity, mine + 1);
    this.total++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const n = (this.byIdentity.get(identity) ?? 1) - 1;
        if (n === 0) this.byIdentity.delete(identity);
        else this.byIdentity.set(identity, n);
      },
    };
  }

  get open(): number {
    return this.total;
  }

  openBy(identity: string): number {
    return this.byIdentity.get(identity) ?? 0;
  }
}
