// Is etcd answering? A cheap count-only range every 2 s (every second while it is not), for the
// readiness check; the change is logged once each way.
import type { Etcd3 } from 'etcd3';
import type { Logger } from '../../controller/logger.js';
import type { Runnable } from '../../controller/manager.js';
import { errorMessage } from '../../controller/errors.js';

export class EtcdProbe implements Runnable {
  readonly name = 'etcd-probe';
  readonly needLeaderElection = false;
  private reachableNow = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly client: Etcd3,
    private readonly key: string,
    private readonly logger: Logger,
  ) {}

  reachable(): boolean {
    return this.reachableNow;
  }

  start(): void {
    void this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    try {
      await this.client.kv.range({ key: Buffer.from(this.key), limit: 1, count_only: true }, { deadline: Date.now() + 2000 });
      if (!this.reachableNow) this.logger.info('etcd reachable');
      this.reachableNow = true;
    } catch (err) {
      if (this.reachableNow) this.logger.warn('etcd unreachable', { error: errorMessage(err) });
      this.reachableNow = false;
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.reachableNow ? 2000 : 1000);
    this.timer.unref();
  }
}
