// Refused etcd credentials are not tried again by every caller: the backoff, and a real etcd
// with authentication on, counting the Authenticate calls it handled.
import test from 'ava';
import { AuthBackoff, isCredentialRefusal } from '../../src/etcd/auth-backoff.js';
import { createEtcdClient, createEtcdWatchClient } from '../../src/etcd/client.js';
import { parseConfig } from '../../src/config/config.js';
import { startEtcd } from '../helpers/etcd.js';

const refusal = new Error('3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password');

test('AuthBackoff: a refusal is held 1 s, then 2, 4 … up to 60 s; a success ends it; other failures are not held', async (t) => {
  let now = 0;
  const b = new AuthBackoff(1000, 60_000, () => now);
  t.true(isCredentialRefusal(refusal));
  t.false(isCredentialRefusal(new Error('14 UNAVAILABLE: No connection established')));
  let tries = 0;
  const fail = () => b.run(async () => (tries++, Promise.reject(refusal)));
  await t.throwsAsync(fail());
  t.is(tries, 1);
  now = 999;
  await t.throwsAsync(fail(), { is: refusal });
  t.is(tries, 1, 'held just below the backoff');
  now = 1000;
  await t.throwsAsync(fail());
  t.is(tries, 2, 'tried at it');
  now = 2999;
  await t.throwsAsync(fail());
  t.is(tries, 2, 'the second backoff is 2 s');
  now = 3000;
  await t.throwsAsync(fail());
  t.is(tries, 3);
  for (let i = 0; i < 10; i++) {
    now += 60_000;
    await t.throwsAsync(fail());
  }
  t.is(tries, 13, 'never longer than 60 s');
  now += 59_999;
  await t.throwsAsync(fail());
  t.is(tries, 13);
  now += 1;
  t.is(await b.run(async () => (tries++, 'token')), 'token');
  await t.throwsAsync(b.run(async () => (tries++, Promise.reject(new Error('14 UNAVAILABLE')))));
  await t.throwsAsync(b.run(async () => (tries++, Promise.reject(new Error('14 UNAVAILABLE')))));
  t.is(tries, 16, 'after a success, and for failures that are not refusals, every call tries');
});

test('a wrong etcd password: the program\'s two clients make a handful of Authenticate calls in 3 s of callers retrying, not one per call', async (t) => {
  const etcd = await startEtcd();
  t.teardown(() => etcd.stop());
  const admin = etcd.client();
  await admin.role('root').create();
  await admin.user('root').create('right');
  await admin.user('root').addRole('root');
  await admin.auth.authEnable({});
  const authenticateCalls = async (): Promise<number> => {
    const body = await (await fetch(`${etcd.endpoint}/metrics`)).text();
    return body
      .split('\n')
      .filter((l) => l.startsWith('grpc_server_handled_total{') && l.includes('grpc_method="Authenticate"'))
      .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
  };
  const config = (password: string) => parseConfig({ etcd: { endpoints: [etcd.endpoint], requestTimeout: 1000, username: 'root', password } }).etcd;
  const etcd3 = createEtcdClient(config('wrong'));
  const watchClient = createEtcdWatchClient(config('wrong'));
  t.teardown(() => {
    etcd3.close();
    watchClient.close();
  });
  const before = await authenticateCalls();
  let calls = 0;
  let refused = 0;
  const end = Date.now() + 3000;
  // Nine informers listing and a probe, each trying again every 20 ms.
  const loop = async (call: () => Promise<unknown>) => {
    while (Date.now() < end) {
      calls++;
      await call().catch((err: unknown) => void (isCredentialRefusal(err) && refused++));
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await Promise.all([
    ...Array.from({ length: 9 }, () => loop(() => watchClient.range({ key: Buffer.from('/k') }, Date.now() + 1000))),
    loop(() => etcd3.kv.range({ key: Buffer.from('/k') })),
  ]);
  const made = (await authenticateCalls()) - before;
  t.log(`${calls} calls, ${refused} refused for the credentials, ${made} Authenticate calls handled by etcd`);
  t.true(calls > 500);
  t.is(refused, calls, 'every call gets the refusal');
  // Per client at 0, 1 and 3 s (and one more at the edge): at most 4 each.
  t.true(made >= 2 && made <= 8, `${made} Authenticate calls`);
  // The right password is not held back by another client's refusals.
  const good = createEtcdClient(config('right'));
  t.teardown(() => good.close());
  t.is(Number((await good.kv.range({ key: Buffer.from('/k') })).count), 0);
});
