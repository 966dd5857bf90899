// A subscriber whose host vanishes (no FIN, no RST: its packets just stop) over real gRPC and a
// real etcd: with keepalive the server finds out by an unanswered ping and frees the
// subscription's slot; without it the slot stays taken while nothing changes.
import { createServer, connect, type Server, type Socket } from 'node:net';
import test from 'ava';
import { KeyLayout } from '../../domain/keys.js';
import { silentLogger } from '../../controller/logger.js';
import { StateFeed } from '../../src/state-api/feed.js';
import { etcdReplayMarker } from '../../src/etcd/replay-marker.js';
import { StateReader, type StateCaches, type StoredStateView } from '../../src/state-api/reader.js';
import { EtcdHistoryStore } from '../../src/etcd/history-store.js';
import type { GrpcServerConfigInput } from '../../src/grpc/config.js';
import { DraftClient } from '../helpers/draft-client.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { startTestServer, stopAll, uniquePrefix } from './_support.js';

let etcd: EtcdServer;
const cleanups: (() => void)[] = [];
test.before(async () => {
  etcd = await startEtcd();
});
test.after.always(async () => {
  for (const c of cleanups.splice(0)) c();
  await stopAll();
  await etcd?.stop();
});

const noStates: StateCaches = { get: () => undefined, list: (): Iterable<StoredStateView> => [], revision: () => 1 };

/** A TCP relay to `target` that can go silent: it then neither forwards nor closes anything. */
async function freezableProxy(target: string): Promise<{ target: string; freeze(): void; close(): void }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const pairs: [Socket, Socket][] = [];
  let frozen = false;
  const server: Server = createServer((inbound) => {
    const outbound = connect(port, host);
    pairs.push([inbound, outbound]);
    for (const [from, to] of [[inbound, outbound], [outbound, inbound]] as const) {
      from.on('data', (d: Buffer) => {
        if (!frozen) to.write(d);
      });
      from.on('error', () => to.destroy());
      from.on('close', () => {
        if (!frozen) to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no proxy port');
  return {
    target: `127.0.0.1:${address.port}`,
    freeze: () => {
      frozen = true;
    },
    close: () => {
      server.close();
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
    },
  };
}

async function subscriberBehindProxy(limits: GrpcServerConfigInput['limits']) {
  const keys = new KeyLayout(uniquePrefix());
  const client = etcd.client();
  const watchClient = etcd.watchClient();
  const feed = new StateFeed({ source: watchClient, markReplay: etcdReplayMarker(client, keys, 'test', 3000), keys, logger: silentLogger, idleStopMs: 300 });
  const reader = new StateReader(noStates, new EtcdHistoryStore(client, keys, 3000));
  const s = await startTestServer(client, { limits }, { keys, readApi: { reader, feed } });
  const proxy = await freezableProxy(s.target);
  const draft = new DraftClient(proxy.target);
  cleanups.push(() => {
    proxy.close();
    draft.close();
    feed.stop();
    watchClient.close();
  });
  draft.subscribe('RESOURCE_TYPE_SCENARIO');
  await eventually(async () => assert.strictEqual(feed.subscribers, 1));
  return { feed, proxy };
}

test.serial('a subscriber that stops answering is disconnected after the keepalive time and timeout, and its slot is free', async (t) => {
  const { feed, proxy } = await subscriberBehindProxy({ keepaliveTimeMs: 400, keepaliveTimeoutMs: 300 });
  // Answering pings (the proxy forwards them), the subscription stays past several keepalive periods.
  await new Promise((r) => setTimeout(r, 1200));
  t.is(feed.subscribers, 1, 'kept while the peer answers');
  proxy.freeze();
  const frozenAt = Date.now();
  await eventually(async () => assert.strictEqual(feed.subscribers, 0), { timeoutMs: 5000 });
  const after = Date.now() - frozenAt;
  t.log(`slot freed ${after} ms after the peer went silent (keepalive 400 ms + timeout 300 ms)`);
  // Not before an unanswered ping could have timed out.
  t.true(after >= 300, `freed after ${after} ms`);
});

test.serial('with keepalive off, a silent subscriber keeps its slot while nothing changes', async (t) => {
  const { feed, proxy } = await subscriberBehindProxy({ keepaliveTimeMs: 0 });
  proxy.freeze();
  await new Promise((r) => setTimeout(r, 2000));
  t.is(feed.subscribers, 1);
});
