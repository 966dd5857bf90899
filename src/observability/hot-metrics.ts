// prom-client finds a labelled series by building and hashing a label string on every inc, dec
// and set. The work queues and controllers move their series several times per key, so during
// a cold start of 100k keys that lookup, and the garbage it leaves, was a visible share of
// statemanager's CPU and GC. Hot series therefore count into plain numbers and are folded into
// prom-client when the registry is collected: every scrape still reads exact values.
import type { Counter, Gauge, LabelValues } from 'prom-client';

interface Flushable {
  flush(): void;
}

export class HotCounter implements Flushable {
  private pending = 0;

  constructor(
    private readonly counter: Counter<string>,
    private readonly labels: LabelValues<string>,
  ) {
    // The series exists from the start, so dashboards see a zero rather than a gap.
    counter.inc(labels, 0);
  }

  inc(n = 1): void {
    this.pending += n;
  }

  flush(): void {
    if (this.pending === 0) return;
    const n = this.pending;
    this.pending = 0;
    this.counter.inc(this.labels, n);
  }
}

export class HotGauge implements Flushable {
  private value = 0;

  constructor(
    private readonly gauge: Gauge<string>,
    private readonly labels: LabelValues<string>,
  ) {
    gauge.set(labels, 0);
  }

  inc(n = 1): void {
    this.value += n;
  }

  dec(n = 1): void {
    this.value -= n;
  }

  set(value: number): void {
    this.value = value;
  }

  flush(): void {
    this.gauge.set(this.labels, this.value);
  }
}

/** The hot series of one registry; every metric that has some calls flush() from its collect(). */
export class HotSeries {
  private readonly series: Flushable[] = [];
  private readonly counters = new Map<string, HotCounter>();
  private readonly gauges = new Map<string, HotGauge>();

  counter(counter: Counter<string>, labels: LabelValues<string>): HotCounter {
    const c = new HotCounter(counter, labels);
    this.series.push(c);
    return c;
  }

  gauge(gauge: Gauge<string>, labels: LabelValues<string>): HotGauge {
    const g = new HotGauge(gauge, labels);
    this.series.push(g);
    return g;
  }

  /** One counter per distinct `id` (e.g. the label values joined), made on first use. */
  counterFor(id: string, counter: Counter<string>, labels: () => LabelValues<string>): HotCounter {
    return once(this.counters, id, () => this.counter(counter, labels()));
  }

  /** One gauge per distinct `id`, made on first use. */
  gaugeFor(id: string, gauge: Gauge<string>, labels: () => LabelValues<string>): HotGauge {
    return once(this.gauges, id, () => this.gauge(gauge, labels()));
  }

  flush(): void {
    for (const s of this.series) s.flush();
  }
}

function once<T>(made: Map<string, T>, id: string, make: () => T): T {
  let v = made.get(id);
  if (v === undefined) {
    v = make();
    made.set(id, v);
  }
  return v;
}
