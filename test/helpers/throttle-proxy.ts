// A TCP proxy on loopback whose answers come at most `bytesPerSecond`: a narrow link between
// statemanager and etcd (another ECU, a cellular link), for tests that need one without network
// namespaces. Requests go through at once; the peer's answers are released every 10 ms.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface ThrottleProxy {
  readonly endpoint: string;
  stop(): Promise<void>;
}

const TICK_MS = 10;

export async function startThrottleProxy(target: { host: string; port: number }, bytesPerSecond: number): Promise<ThrottleProxy> {
  const all = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    all.add(client).add(upstream);
    const queued: Buffer[] = [];
    const perTick = Math.max(1, Math.floor((bytesPerSecond * TICK_MS) / 1000));
    const timer = setInterval(() => {
      let budget = perTick;
      while (budget > 0 && queued.length > 0) {
        const head = queued[0]!;
        if (head.length <= budget) {
          queued.shift();
          budget -= head.length;
          client.write(head);
        } else {
          queued[0] = head.subarray(budget);
          client.write(head.subarray(0, budget));
          budget = 0;
        }
      }
    }, TICK_MS);
    const end = (): void => {
      clearInterval(timer);
      client.destroy();
      upstream.destroy();
      all.delete(client);
      all.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
    client.on('data', (d: Buffer) => upstream.write(d));
    upstream.on('data', (d: Buffer) => void queued.push(d));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async stop() {
      for (const s of all) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
