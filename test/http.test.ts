// /healthz and /readyz read the check registry: 503 naming what fails, 200 otherwise.
import test from 'ava';
import { Registry } from 'prom-client';
import { Manager } from '../controller/manager.js';
import { HttpServer } from '../src/http/server.js';

test('/healthz and /readyz answer from the manager\'s named checks', async (t) => {
  let synced = false;
  const m = new Manager({ caches: { start: () => undefined, waitForSync: async () => undefined, hasSynced: () => synced, stop: async () => undefined } });
  let stuck = true;
  m.addHealthCheck('watch-loop', () => (stuck ? 'stuck' : undefined));
  const http = new HttpServer({ addr: '127.0.0.1:0', registry: new Registry(), probes: { ready: () => m.ready(), healthy: () => m.healthy() } });
  const port = await http.start();
  t.teardown(() => http.stop());
  const get = async (path: string): Promise<[number, string]> => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return [res.status, await res.text()];
  };
  t.deepEqual(await get('/healthz'), [503, 'unhealthy: watch-loop\n']);
  t.deepEqual(await get('/readyz'), [503, 'not ready: informers-synced, workers\n']);
  stuck = false;
  synced = true;
  await m.start();
  t.deepEqual(await get('/healthz'), [200, 'ok\n']);
  t.deepEqual(await get('/readyz'), [200, 'ok\n']);
});
