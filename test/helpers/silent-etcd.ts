// An etcd endpoint that accepts connections and never answers (a frozen member: SIGSTOP, or a
// black hole past the TCP handshake): every call waits for its deadline.
import { createServer, type Socket } from 'node:net';
import type { ExecutionContext } from 'ava';
import { Etcd3 } from 'etcd3';

/** An etcd3 client of such an endpoint; the endpoint and client are closed with the test. */
export async function silentEtcd(t: ExecutionContext): Promise<Etcd3> {
  const sockets: Socket[] = [];
  const hole = createServer((sock) => {
    sockets.push(sock);
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
  const addr = hole.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const dead = new Etcd3({ hosts: `http://127.0.0.1:${port}` });
  t.teardown(() => {
    dead.close();
    for (const s of sockets) s.destroy();
    hole.close();
  });
  return dead;
}
