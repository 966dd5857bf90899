// The hostile node agent of issue 18, in a process of its own (so that its work of building and
// sending ~900 KiB lists is not charged to the server's event loop): 95 containers with 9 KB
// annotations, each list different, from `concurrency` callers over two connections, for `ms`.
// Prints the count of answers by status as one JSON line.
// Usage: node --import=tsx test/grpc/_flood-agent.ts <target> <token> <node> <ms> <concurrency>
import * as grpc from '@grpc/grpc-js';
import { loadStateManagerProto } from '../../src/grpc/proto.js';

const [target, token, node, ms, concurrency] = process.argv.slice(2) as [string, string, string, string, string];
const proto = loadStateManagerProto();
const conns = [0, 1].map(() => new proto.statemanager.StateManagerConnection(target, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 4 * 1024 * 1024 }));
const md = new grpc.Metadata();
md.set('authorization', `Bearer ${token}`);
const codes: Record<string, number> = {};
const end = Date.now() + Number(ms);
let round = 0;

const send = (i: number): Promise<void> => {
  const r = round++;
  const containers = Array.from({ length: 95 }, (_, c) => ({ id: `c${c}`, image: 'img', annotation: { blob: `${r}:${c}:`.padEnd(9000, 'x') } }));
  return new Promise((resolve) => {
    conns[i % 2]!.SendChangedContainerList({ node_name: node, containers }, md, { deadline: Date.now() + 10_000 }, (err) => {
      const code = err ? grpc.status[err.code] ?? String(err.code) : 'OK';
      codes[code] = (codes[code] ?? 0) + 1;
      resolve();
    });
  });
};

await Promise.all(
  Array.from({ length: Number(concurrency) }, async (_, i) => {
    while (Date.now() < end) await send(i);
  }),
);
for (const c of conns) c.close();
console.log(JSON.stringify(codes));
