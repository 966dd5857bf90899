// How the CLI reads two things the API encodes in its answers: a list the server capped
// (total_count above the resources sent), told on stderr; and the authenticated identity the
// server appends to a history entry's source. Over real gRPC against a stand-in server.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { loadStateManagerProto } from '../../src/grpc/proto.js';
import { splitSource } from '../../src/cli/grpc-answers.js';
import { cli } from './_harness.js';

let server: grpc.Server;
let port: number;

test.before(async () => {
  const proto = loadStateManagerProto();
  server = new grpc.Server();
  const unimplemented = (_call: unknown, cb: (e: Partial<grpc.StatusObject>) => void): void => cb({ code: grpc.status.UNIMPLEMENTED });
  const state = (name: string) => ({ resource_name: name, resource_type: 'RESOURCE_TYPE_PACKAGE', current_state: 'Running', state_generation: '1', metadata: { revision: '7' } });
  server.addService(proto.statemanager.StateManagerConnection.service, {
    ListResourcesByState(_call: unknown, cb: grpc.sendUnaryData<unknown>) {
      cb(null, { resources: [state('a'), state('b'), state('c')], success: true, message: 'revision 7; capped at 3 of 5', total_count: 5 });
    },
    GetResourceStateHistory(_call: unknown, cb: grpc.sendUnaryData<unknown>) {
      cb(null, {
        success: true,
        message: '',
        history: [
          { from_state: '', to_state: 'Idle', timestamp_ns: '1700000000000000000', reason: 'requested', source: 'api-server (identity cn:apiserver)', transition_id: 't1' },
          { from_state: 'Idle', to_state: 'Waiting', timestamp_ns: '1700000001000000000', reason: 'requested', source: 'cn:apiserver', transition_id: 't2' },
        ],
      });
    },
    GetResourceState: unimplemented,
    SubscribeToStateChanges: (call: grpc.ServerWritableStream<unknown, unknown>) => call.destroy(),
    SendChangedContainerList: unimplemented,
    SendStateChange: unimplemented,
    SendAction: unimplemented,
  });
  port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
});

test.after.always(() => server?.forceShutdown());

test('a capped list is printed with a line on stderr saying how many there are', async (t) => {
  const r = await cli(['--server', `127.0.0.1:${port}`, 'get', 'packages', '-o', 'json'], { env: {} });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(
    (JSON.parse(r.stdout) as { name: string }[]).map((p) => p.name),
    ['a', 'b', 'c'],
  );
  t.is(r.stderr, `statemanager: showing 3 of 5 packages, the most statemanager at 127.0.0.1:${port} answers at once; read etcd (without --server) for all of them\n`);
});

test('history over gRPC shows the identity the server appended to the source', async (t) => {
  const r = await cli(['--server', `127.0.0.1:${port}`, 'history', 'scenario', 's', '-o', 'json'], { env: {} });
  t.is(r.code, 0, r.stderr);
  const entries = JSON.parse(r.stdout) as { source: string; identity?: string }[];
  t.deepEqual(
    entries.map((e) => [e.source, e.identity]),
    [
      ['api-server', 'cn:apiserver'],
      ['cn:apiserver', undefined],
    ],
  );
  const table = await cli(['--server', `127.0.0.1:${port}`, 'history', 'scenario', 's'], { env: {} });
  t.regex(table.stdout, /^TIME +AGE +TRANSITION +REASON +SOURCE +IDENTITY\n.* api-server +cn:apiserver\n.* cn:apiserver +-\n$/s);
});

test('splitSource: only the last "(identity …)" group is the server\'s', (t) => {
  t.deepEqual(splitSource('api-server (identity anonymous)'), { source: 'api-server', identity: 'anonymous' });
  t.deepEqual(splitSource('(identity token:pm)'), { source: '', identity: 'token:pm' });
  t.deepEqual(splitSource('forged (identity cn:admin) (identity anonymous)'), { source: 'forged (identity cn:admin)', identity: 'anonymous' });
  t.deepEqual(splitSource('controller/sm-0'), { source: 'controller/sm-0' });
  t.deepEqual(splitSource('a (identity )'), { source: 'a (identity )' });
});
