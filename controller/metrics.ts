// Metric surfaces the work queue and controller report to. Kept as tiny structural
// interfaces so the machinery does not depend on a metrics library: a prom-client
// implementation can hand in labelled children (e.g. `gauge.labels({ name })`), which
// already have these methods, and so expose client-go's and controller-runtime's series.

export interface CounterMetric {
  inc(n?: number): void;
}

/** A gauge moved by steps (queue depth). */
export interface GaugeMetric {
  inc(): void;
  dec(): void;
}

/** A gauge overwritten with a fresh value (periodically computed figures). */
export interface SettableGaugeMetric {
  set(value: number): void;
}

export interface HistogramMetric {
  observe(value: number): void;
}

/** One queue's metrics, shaped after client-go's workqueue MetricsProvider. */
export interface QueueMetricsProvider {
  /** Keys added but not yet handed to a worker (workqueue_depth). */
  depth: GaugeMetric;
  /** Adds that were not deduplicated (workqueue_adds_total). */
  adds: CounterMetric;
  /** Seconds a key waited between add and get (workqueue_queue_duration_seconds). */
  latency: HistogramMetric;
  /** Seconds between get and done (workqueue_work_duration_seconds). */
  workDuration: HistogramMetric;
  /** Seconds of work in progress not yet observed by workDuration (workqueue_unfinished_work_seconds). */
  unfinishedWorkSeconds: SettableGaugeMetric;
  /** Seconds the longest running key has been processing (workqueue_longest_running_processor_seconds). */
  longestRunningProcessorSeconds: SettableGaugeMetric;
  /** Rate-limited re-adds (workqueue_retries_total). */
  retries: CounterMetric;
}

const noop = (): void => undefined;

export const noopQueueMetrics: QueueMetricsProvider = {
  depth: { inc: noop, dec: noop },
  adds: { inc: noop },
  latency: { observe: noop },
  workDuration: { observe: noop },
  unfinishedWorkSeconds: { set: noop },
  longestRunningProcessorSeconds: { set: noop },
  retries: { inc: noop },
};

export type ReconcileOutcome = 'success' | 'error' | 'requeue' | 'requeue_after' | 'unavailable';

/** One controller's metrics, shaped after controller-runtime's controller_runtime_* series. */
export interface ControllerMetrics {
  /** controller_runtime_reconcile_total{result} */
  reconcileTotal(result: ReconcileOutcome): void;
  /** controller_runtime_reconcile_errors_total */
  reconcileError(): void;
  /** controller_runtime_reconcile_time_seconds */
  reconcileTime(seconds: number): void;
  /** controller_runtime_active_workers, moved by +1 / -1 around each reconcile. */
  activeWorkers(delta: number): void;
}

export const noopControllerMetrics: ControllerMetrics = {
  reconcileTotal: noop,
  reconcileError: noop,
  reconcileTime: noop,
  activeWorkers: noop,
};
