// An etcd endpoint that accepts connections and never answers (a frozen member: SIGSTOP, or a
// black hole past the TCP handshake): every call waits for its deadline.
import { createServer, type Socket } from 'node:net';
import type { ExecutionContext } from 'ava';
import { Etcd3 } from 'etcd3';

/** An etcd3 client of such an endpoint; the endpoint and client are closed with the test. */
export async function silentEtcd(t: ExecutionContext): Promise<Etcd3> {
  const dead = new Etcd3({ hosts: await silentEndpoint(t) });
  t.teardown(() => dead.close());
  return dead;
}

/** Such an endpoint (`http://127.0.0.1:PORT`), closed with the test. */
export async function silentEndpoint(t: ExecutionContext): Promise<string> {
  const sockets: Socket[] = [];
  const hole = createServer((sock) => {
    sockets.push(sock);
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
  const addr = hole.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    hole.close();
  });
  return `http://127.0.0.1:${port}`;
}
