// A resume far back through the real StateFeed of a build, against a fresh etcd (docs/state-api.md):
// N model state changes, each with its history entry, and as many container puts between them;
// then a subscriber resumes from revision 1 with the replay looking old states up once per key
// ("lookup") and with etcd's prev_kv ("prevkv"), and the etcd process's CPU is read from /proc.
//
//   node test/bench/far-resume.mjs            N=100000 V=lookup,prevkv DIST=dist (absolute)
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import console from 'node:console';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { URL } from 'node:url';
const dist = process.env.DIST ?? new URL('../../dist', import.meta.url).pathname;
const { createEtcdClient, createEtcdWatchClient } = await import(`${dist}/src/etcd/client.js`);
const { StateFeed } = await import(`${dist}/src/state-api/feed.js`);
const { KeyLayout } = await import(`${dist}/domain/keys.js`);
const { etcdPreviousValues } = await import(`${dist}/src/etcd/previous-values.js`).catch(() => ({}));
const port = 25000 + Math.floor(Math.random() * 1000);
const dir = mkdtempSync(join(tmpdir(), 'farres-'));
const etcd = spawn('/usr/bin/etcd', ['--data-dir', dir, '--listen-client-urls', `http://127.0.0.1:${port}`, '--advertise-client-urls', `http://127.0.0.1:${port}`, '--listen-peer-urls', `http://127.0.0.1:${port + 1}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${port + 1}`, '--initial-cluster', `default=http://127.0.0.1:${port + 1}`, '--quota-backend-bytes', String(8 * 1024 ** 3)], { stdio: 'ignore' });
process.on('exit', () => {
  etcd.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
const cfg = { endpoints: [`127.0.0.1:${port}`], requestTimeout: 30000, tls: {} };
await new Promise((r) => setTimeout(r, 1500));
const client = createEtcdClient(cfg);
const N = +(process.env.N ?? 100000);
const states = ['Running', 'Exited'];
let inflight = [];
for (let i = 0; i < N; i++) {
  const m = `m${i % 1000}`;
  const v = Math.floor(i / 1000) + 1;
  inflight.push(client.if(`/model/${m}/state`, 'Version', '>', -1).then(
    client.put(`/model/${m}/state`).value(states[v % 2]),
    client.put(`/statemanager/history/model/${m}/${String(v).padStart(12, '0')}`).value(JSON.stringify({ kind: 'model', name: m, from: states[(v + 1) % 2], to: states[v % 2], at: new Date().toISOString(), reason: 'containers: running 2', source: 'sm-0', drawn: true })),
  ).commit());
  inflight.push(client.put(`/container/n${i % 50}/c${i % 2000}`).value(`{"id":"c${i}","names":["x"],"image":"i","state":{"status":"running"},"config":{},"annotation":{"model":"${m}"}}`).exec());
  if (inflight.length >= 400) { await Promise.all(inflight); inflight = []; }
}
await Promise.all(inflight);
const etcdCpu = () => { const f = readFileSync(`/proc/${etcd.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
const keys = new KeyLayout('');
for (const variant of (process.env.V ?? 'lookup,prevkv').split(',')) {
  const w = createEtcdWatchClient(cfg);
  const feed = new StateFeed({
    source: w, keys, logger: { debug() {}, info() {}, warn() {}, error() {}, child() { return this; } },
    markReplay: async () => Number((await client.kv.put({ key: Buffer.from(keys.replayMarker), value: Buffer.from('x') })).header.revision),
    ...(variant === 'lookup' ? { lookUpPrevious: etcdPreviousValues(client, 30000) } : {}),
  });
  await feed.start();
  const c0 = etcdCpu(); const s = Date.now(); let got = 0; let wrongFrom = 0; let first = 0;
  await new Promise((resolve) => {
    feed.subscribe({ sinceRevision: 1 }, {
      send(r) { if (!first) first = Date.now() - s; got++; if (r.from === r.to || (r.from !== '' && r.from !== states[(states.indexOf(r.to) + 1) % 2])) wrongFrom++; if (got >= N) resolve(); return true; },
      end(reason) { console.log('ended', reason); resolve(); },
    });
  });
  console.log(`${variant.padEnd(8)} ${got} changes, ${wrongFrom} with a wrong old state, first after ${first} ms, all after ${Date.now() - s} ms, etcd CPU ${(etcdCpu() - c0).toFixed(1)} s`);
  feed.stop(); w.close();
}
client.close(); etcd.kill('SIGKILL');
