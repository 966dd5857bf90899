// `watch` and `resync --wait` follow etcd through the project's own watch client (one stream per
// watch), not etcd3's shared watch manager: across an etcd restart the watch resumes from the
// next revision (every transition printed once, in order), and a watch etcd ends for good ends
// the command with one line.
import test from 'ava';
import { parseConfig } from '../../src/config/config.js';
import { EtcdConnection } from '../../src/cli/etcd-connection.js';
import { watchKeys } from '../../src/cli/etcd-watch.js';
import type { EtcdWatchClient, EtcdWatchHandlers } from '../../src/etcd/watch-client.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { cli, Script } from './_harness.js';

let etcd: EtcdServer;

test.before(async () => {
  etcd = await startEtcd();
});

test.after.always(async () => {
  await etcd?.stop();
});

test.serial('watch across an etcd restart: says once that it lost the watch, reconnects, prints every transition once, in order', async (t) => {
  const prefix = '/cli-watch-restart';
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: prefix };
  let stderr = '';
  let ready!: () => void;
  const watching = new Promise<void>((r) => (ready = r));
  const done = cli(['watch', '--count', '4', '-o', 'json', '--timeout', '60s'], {
    env,
    onStderr: (s) => {
      stderr = s;
      if (s.includes('watching transitions under')) ready();
    },
  });
  await Promise.race([watching, done]);
  const before = new Script(etcd.client(), prefix);
  const written = [
    await before.history('model', 'm', null, 'Created', new Date().toISOString(), 'one'),
    await before.history('model', 'm', 'Created', 'Running', new Date().toISOString(), 'two'),
  ];
  await etcd.restart();
  await eventually(() => assert.match(stderr, /statemanager: lost the watch on etcd \([^)]*\); reconnecting\n/));
  const after = new Script(etcd.client(), prefix);
  written.push(await after.history('package', 'p', null, 'Idle', new Date().toISOString(), 'three'));
  written.push(await after.history('package', 'p', 'Idle', 'Running', new Date().toISOString(), 'four'));
  const r = await done;
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr.match(/lost the watch/g)?.length, 1, 'once per outage, not once per attempt');
  t.deepEqual(
    r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown),
    written,
  );
  after.client.close();
});

/** A connection whose watch client is a stand-in that hands its handlers to the test. */
function fakeConnection(): { etcd: EtcdConnection; handlers: () => EtcdWatchHandlers; closed: () => boolean } {
  let h: EtcdWatchHandlers | undefined;
  let closed = false;
  const client = {
    watch(_target: unknown, handlers: EtcdWatchHandlers) {
      h = handlers;
      return { close: () => void (closed = true) };
    },
  } as unknown as EtcdWatchClient;
  const config = parseConfig({ etcd: { endpoints: ['http://127.0.0.1:1'] } }).etcd;
  const etcd = new (class extends EtcdConnection {
    override get watches(): EtcdWatchClient {
      return client;
    }
  })(config, 300, undefined);
  return { etcd, handlers: () => h!, closed: () => closed };
}

test('a watch etcd ends for good (compacted) fails with one line naming etcd', async (t) => {
  const { etcd, handlers } = fakeConnection();
  const failures: string[] = [];
  const started = watchKeys(etcd, { key: '/k', startRevision: 7 }, { fail: (err) => failures.push(err.message) });
  handlers().onCreated?.(6);
  await started;
  handlers().onCompacted(9);
  t.deepEqual(failures, ['etcd request failed (etcd at http://127.0.0.1:1): the watch\'s start revision 7 was compacted (etcd keeps revisions from 9)']);
});

test('a watch etcd never confirms: no answer within the deadline, the stream closed, no "lost the watch" before it existed', async (t) => {
  const { etcd, handlers, closed } = fakeConnection();
  const lost: Error[] = [];
  const started = watchKeys(etcd, { key: '/k', startRevision: 1 }, { disconnected: (e) => lost.push(e), fail: () => undefined });
  handlers().onDisconnected?.(new Error('14 UNAVAILABLE: connection refused'));
  await t.throwsAsync(started, { message: 'cannot reach etcd at http://127.0.0.1:1: no answer within 300ms' });
  t.true(closed());
  t.deepEqual(lost, []);
});
