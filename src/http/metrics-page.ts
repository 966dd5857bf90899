// The /metrics page, rendered at most once per `minIntervalMs`: scrapes in between get the page
// of the last render (at most that old), so a flood of scrapes costs one render per interval
// however many arrive. Prometheus scrapes every 15–60 s and never notices.
export class MetricsPage {
  private last: { at: number; body: Promise<string> } | undefined;

  constructor(
    private readonly render: () => Promise<string>,
    private readonly minIntervalMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get(): Promise<string> {
    const now = this.now();
    if (this.last !== undefined && now - this.last.at < this.minIntervalMs) return this.last.body;
    const body = this.render();
    const last = (this.last = { at: now, body });
    // A failed render is not served again.
    body.catch(() => {
      if (this.last === last) this.last = undefined;
    });
    return body;
  }
}
