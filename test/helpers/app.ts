// An in-process statemanager against a test etcd, with a fast configuration.
import { StateManagerApp, type AppDeps } from '../../src/app.js';
import { parseConfig, type ConfigInput } from '../../src/config/config.js';
import { Metrics } from '../../src/observability/metrics.js';
import { silentLogger } from '../../controller/logger.js';
import type { EtcdServer } from './etcd.js';

export function testConfig(etcd: EtcdServer, acAddr: string, overrides: ConfigInput = {}) {
  return parseConfig({
    ...overrides,
    etcd: { endpoints: [etcd.endpoint], requestTimeout: '3s', ...overrides.etcd },
    actionController: { addr: acAddr, timeout: '10s', ...overrides.actionController },
    reconcile: { retryBase: '50ms', retryCap: '500ms', ...overrides.reconcile },
    leaderElection: { enabled: false, ...overrides.leaderElection },
  });
}

export async function startApp(
  etcd: EtcdServer,
  acAddr: string,
  overrides: ConfigInput = {},
  deps: Partial<AppDeps> = {},
): Promise<StateManagerApp> {
  const app = new StateManagerApp({
    config: testConfig(etcd, acAddr, overrides),
    logger: process.env.TEST_LOGS ? (await import('../../src/observability/logging.js')).createLogger('debug', 'text') : silentLogger,
    metrics: new Metrics({ defaultMetrics: false }),
    ...deps,
  });
  await app.start();
  return app;
}
