// A TCP proxy on loopback that delivers every chunk, each way, `oneWayMs` after it came, in order:
// a link with a long round trip (a vehicle's etcd over a cellular link), for tests that need one
// without network namespaces (netem is not in every kernel).
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export async function startDelayProxy(target: { host: string; port: number }, oneWayMs: number): Promise<DelayProxy> {
  const all = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (to: Socket, chunk: Buffer): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!to.destroyed) to.write(chunk);
    }, oneWayMs);
    timers.add(timer);
  };
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    all.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => later(upstream, chunk));
    upstream.on('data', (chunk: Buffer) => later(client, chunk));
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      all.delete(client);
      all.delete(upstream);
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of all) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
