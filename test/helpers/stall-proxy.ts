// A TCP proxy on loopback that can go silent: while stalled it accepts connections and drops
// whatever comes, in both directions, and answers nothing — what a peer behind a black hole or a
// broken middlebox looks like to a client once its TCP handshake is through. Connections made
// while stalled stay silent after `resume()` (their path is gone); new ones are forwarded again.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface StallProxy {
  readonly port: number;
  readonly endpoint: string;
  /** Connections accepted while stalled, and still open. */
  readonly silentConnections: number;
  stall(): void;
  resume(): void;
  /** Closes every connection it holds, both sides (a connection lost mid-call); new ones are forwarded. */
  cutAll(): void;
  stop(): Promise<void>;
}

export async function startStallProxy(target: { host: string; port: number }): Promise<StallProxy> {
  let stalled = false;
  const silent = new Set<Socket>();
  const all = new Set<Socket>();
  const server: Server = createServer((client) => {
    all.add(client);
    client.on('close', () => {
      all.delete(client);
      silent.delete(client);
    });
    client.on('error', () => client.destroy());
    if (stalled) {
      silent.add(client);
      client.on('data', () => undefined);
      return;
    }
    const upstream = connect(target.port, target.host);
    all.add(upstream);
    upstream.on('close', () => {
      all.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    client.on('data', (d: Buffer) => {
      if (!stalled) upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!stalled) client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    get silentConnections() {
      return silent.size;
    },
    stall() {
      stalled = true;
    },
    resume() {
      stalled = false;
    },
    cutAll() {
      for (const s of all) s.destroy();
    },
    async stop() {
      for (const s of all) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
