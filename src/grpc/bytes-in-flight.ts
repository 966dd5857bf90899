// List answers being sent at once, counted by their bytes. grpc-js copies each answer to frame it
// and keeps the copy until its stream has sent it, so 50 callers given one 4 MiB answer together
// held 200 MB outside the heap, and the kernel killed the process under the chart's 512Mi
// (black-box probing in a cgroup). An answer waits its turn, in order, while those being sent
// fill the budget; a turn ends when its call ends (sent, or cancelled), or after `holdCapMs` at
// most, so a lost end can never close the gate for good. One answer above the whole budget goes
// when nothing else is being sent. Waiting callers are bounded; past the bound one is refused.
export type Release = () => void;

export interface BytesInFlightOptions {
  /** Bytes of answers being sent at once. */
  capacity: number;
  /** Callers waiting their turn at most; one more is refused at once. */
  maxWaiting: number;
  /** The longest a turn is held if its end is never seen. Default 120 s. */
  holdCapMs?: number;
}

interface Waiter {
  bytes: number;
  grant: (release: Release) => void;
}

export class BytesInFlight {
  private used = 0;
  private readonly queue: Waiter[] = [];

  constructor(private readonly o: BytesInFlightOptions) {}

  /** Bytes being sent now. */
  get inFlight(): number {
    return this.used;
  }

  /** Callers waiting their turn. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * A turn for `bytes`: a release to call when the answer has been sent; 'busy' when too many
   * wait; 'late' when `deadline` (epoch ms) passes first.
   */
  acquire(bytes: number, deadline?: number): Promise<Release | 'busy' | 'late'> {
    if (this.queue.length === 0 && this.fits(bytes)) return Promise.resolve(this.take(bytes));
    if (this.queue.length >= this.o.maxWaiting) return Promise.resolve('busy');
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        bytes,
        grant: (release) => {
          clearTimeout(timer);
          resolve(release);
        },
      };
      this.queue.push(waiter);
      if (deadline !== undefined) {
        timer = setTimeout(() => {
          const i = this.queue.indexOf(waiter);
          if (i < 0) return;
          this.queue.splice(i, 1);
          resolve('late');
          this.grantWaiting(); // it may have been first in line
        }, Math.max(0, deadline - Date.now()));
        timer.unref();
      }
    });
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.o.capacity;
  }

  private take(bytes: number): Release {
    this.used += bytes;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      clearTimeout(cap);
      this.used -= bytes;
      this.grantWaiting();
    };
    const cap = setTimeout(release, this.o.holdCapMs ?? 120_000);
    cap.unref();
    return release;
  }

  private grantWaiting(): void {
    while (this.queue.length > 0 && this.fits(this.queue[0]!.bytes)) {
      const w = this.queue.shift()!;
      w.grant(this.take(w.bytes));
    }
  }
}
