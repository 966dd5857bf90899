// The CLI never sends a bearer token in clear text to another machine: over real gRPC, against
// a stand-in server that records the authorization metadata it receives, on this machine's
// loopback and non-loopback addresses.
import { networkInterfaces, tmpdir } from 'node:os';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { loadStateManagerProto } from '../../src/grpc/proto.js';
import { createTestPki, type TestPki } from '../helpers/certs.js';
import { cli } from './_harness.js';

const TOKEN = 'a-bearer-token-long-enough-to-be-real-0123456789';

/** The first non-internal IPv4 address of this machine (the tests that need one skip without). */
const external = Object.values(networkInterfaces())
  .flat()
  .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address;

interface Recorder {
  port: number;
  /** The authorization header of every call received. */
  seen: string[];
}

let pki: TestPki;
let dir: string;
let plain: Recorder;
let secure: Recorder;
const servers: grpc.Server[] = [];

async function recorder(creds: grpc.ServerCredentials): Promise<Recorder> {
  const proto = loadStateManagerProto();
  const seen: string[] = [];
  const server = new grpc.Server();
  const unimplemented = (_call: unknown, cb: (e: Partial<grpc.StatusObject>) => void): void => cb({ code: grpc.status.UNIMPLEMENTED });
  server.addService(proto.statemanager.StateManagerConnection.service, {
    ListResourcesByState(call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) {
      seen.push(String(call.metadata.get('authorization')[0] ?? ''));
      cb(null, { resources: [], success: true, message: '', total_count: 0 });
    },
    GetResourceState: unimplemented,
    GetResourceStateHistory: unimplemented,
    SubscribeToStateChanges: (call: grpc.ServerWritableStream<unknown, unknown>) => call.destroy(),
    SendChangedContainerList: unimplemented,
    SendStateChange: unimplemented,
    SendAction: unimplemented,
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('0.0.0.0:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  servers.push(server);
  return { port, seen };
}

test.before(async () => {
  pki = await createTestPki();
  dir = mkdtempSync(join(tmpdir(), 'sm-cli-token-'));
  const ca = await pki.createCa('ca');
  const cert = await ca.issue('server', { cn: 'statemanager', sans: ['DNS:statemanager.test', 'IP:127.0.0.1', ...(external ? [`IP:${external}`] : [])], usage: 'server' });
  plain = await recorder(grpc.ServerCredentials.createInsecure());
  secure = await recorder(grpc.ServerCredentials.createSsl(null, [{ cert_chain: cert.cert, private_key: cert.key }]));
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
});

test.after.always(async () => {
  for (const s of servers) s.forceShutdown();
  await pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const REFUSAL = /^statemanager: refusing to send the bearer token in clear text to (\S+), which is not a loopback address: use TLS \(--tls, or --ca with a private CA\), or --insecure-token if a tunnel or service mesh encrypts the path\n$/;

test.serial('a token without TLS to a non-loopback server is a usage error, and nothing is sent', async (t) => {
  const before = plain.seen.length;
  const hosts = [...(external ? [external] : []), 'statemanager.edge.svc', '[fd00::2]'];
  for (const host of hosts) {
    const addr = `${host}:${plain.port}`;
    for (const [argv, env] of [
      [['--token', TOKEN], {}],
      [['--token-file', join(dir, 'token')], {}],
      [[], { STATEMANAGER_TOKEN: TOKEN }],
    ] as [string[], NodeJS.ProcessEnv][]) {
      const r = await cli(['--server', addr, ...argv, '--timeout', '2s', 'get', 'packages'], { env });
      t.is(r.code, 2, `${addr} ${argv.join(' ')}`);
      t.regex(r.stderr, REFUSAL);
      t.is(REFUSAL.exec(r.stderr)?.[1], addr);
    }
  }
  t.is(plain.seen.length, before, 'the server received no call');
});

test.serial('a token without TLS to a loopback server is sent', async (t) => {
  for (const host of ['127.0.0.1', 'localhost']) {
    const r = await cli(['--server', `${host}:${plain.port}`, '--token', TOKEN, 'get', 'packages', '-o', 'json'], { env: {} });
    t.is(r.code, 0, r.stderr);
    t.is(plain.seen.at(-1), `Bearer ${TOKEN}`);
  }
});

test.serial('over TLS a token goes to a non-loopback server', async (t) => {
  if (!external) return t.pass('no non-loopback IPv4 address on this machine');
  const r = await cli(['--server', `${external}:${secure.port}`, '--ca', join(dir, 'ca.crt'), '--token-file', join(dir, 'token'), 'get', 'packages', '-o', 'json'], { env: {} });
  t.is(r.code, 0, r.stderr);
  t.is(secure.seen.at(-1), `Bearer ${TOKEN}`);
});

test.serial('--insecure-token sends it in clear text to a non-loopback server when asked to', async (t) => {
  if (!external) return t.pass('no non-loopback IPv4 address on this machine');
  const r = await cli(['--server', `${external}:${plain.port}`, '--insecure-token', '--token', TOKEN, 'get', 'packages', '-o', 'json'], { env: {} });
  t.is(r.code, 0, r.stderr);
  t.is(plain.seen.at(-1), `Bearer ${TOKEN}`);
});

test.serial('without a token nothing is refused: anonymous reads of a non-loopback server go ahead', async (t) => {
  if (!external) return t.pass('no non-loopback IPv4 address on this machine');
  const r = await cli(['--server', `${external}:${plain.port}`, 'get', 'packages', '-o', 'json'], { env: {} });
  t.is(r.code, 0, r.stderr);
  t.is(plain.seen.at(-1), '');
});

test('--insecure-token needs --server', async (t) => {
  const r = await cli(['--insecure-token', 'get', 'packages'], { env: {} });
  t.is(r.code, 2);
  t.is(r.stderr, 'statemanager: --insecure-token needs --server (or STATEMANAGER_SERVER)\n');
});
