// etcd's --max-txn-ops as found: the configured value (grpc.etcdMaxTxnOps, 128 by default) until
// etcd refuses a transaction as too large, then half of it each time, never below a floor. An etcd
// whose limits were set lower than statemanager was told refused every container list that changed
// more than they allow, again at every resend (black-box probing: 4,000 dead containers never
// recorded, no package in Error, the ActionController never asked).

/** Fewest operations a transaction is cut to: a model's containers and the list's guards. */
export const MIN_TXN_OPS = 4;

export class TxnOpsLimit {
  private value: number;

  constructor(
    configured: number,
    /** Told of each cut, to say it once. */
    private readonly onCut: (from: number, to: number) => void = () => undefined,
  ) {
    this.value = Math.max(MIN_TXN_OPS, configured);
  }

  get(): number {
    return this.value;
  }

  /** Half as many operations from now on; false when already at the floor (nothing smaller to try). */
  cut(): boolean {
    if (this.value <= MIN_TXN_OPS) return false;
    const from = this.value;
    this.value = Math.max(MIN_TXN_OPS, Math.floor(from / 2));
    this.onCut(from, this.value);
    return true;
  }
}
