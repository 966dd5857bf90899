// Probes and metrics over plain HTTP: /healthz (alive, event loop not stalled), /readyz
// (200, or 503 naming the failing checks), /metrics (Prometheus text format, rendered at most
// once per `metricsMinIntervalMs` however many scrape it).
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { splitHostPort } from '../config/address.js';
import { MetricsPage } from './metrics-page.js';

// Required, not imported: on Node 24 the ES module face of node:http loads Node's bundled undici
// (fetch, WebSocket), about 12 MB resident that statemanager never uses (docs/performance.md, Footprint).
const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

/** Default: at most ten renders of /metrics a second. */
export const DEFAULT_METRICS_MIN_INTERVAL_MS = 100;

/**
 * Connections the probe and metrics port holds at once: kubelet's probes and a few scrapers use a
 * handful. Without a bound anyone who reaches the port could hold connections (and file
 * descriptors, shared with etcd's and gRPC's) without limit; one more is closed as it comes.
 */
export const DEFAULT_HTTP_MAX_CONNECTIONS = 256;

/**
 * Connections one peer address holds at once: kubelet probes on one or two and a scraper on a few.
 * The port's bound alone let one local client holding 256 idle connections (and reopening each one
 * closed) fail 18 of 19 /healthz probes in 40 s, which would have restarted the pod (black-box
 * probe). One more from the same address is closed as it comes.
 */
export const DEFAULT_HTTP_CONNECTIONS_PER_PEER = 32;

/**
 * A connection with nothing sent or received for this long is closed. Node's server otherwise
 * keeps one that never sends a request forever (200 such connections were all open after 95 s);
 * scrapers' keep-alive connections are closed after 5 s idle anyway (keepAliveTimeout).
 */
export const DEFAULT_HTTP_IDLE_TIMEOUT_MS = 30_000;

export interface ProbeSource {
  ready(): { ok: boolean; failing: string[] };
  /** Liveness checks beyond the event loop's (the manager's registry). */
  healthy?(): { ok: boolean; failing: string[] };
}

export interface HttpServerOptions {
  addr: string;
  registry: Registry;
  probes: ProbeSource;
  /** The event loop counts as stalled when a 1 s timer is this late. */
  stallThresholdMs?: number;
  /** Scrapes closer together than this get the page of the last render. Default 100. */
  metricsMinIntervalMs?: number;
  /** The clock of that interval (tests); performance.now by default. */
  now?: () => number;
  /** Default DEFAULT_HTTP_MAX_CONNECTIONS. */
  maxConnections?: number;
  /** Default DEFAULT_HTTP_CONNECTIONS_PER_PEER; 0: no bound per address. */
  connectionsPerPeer?: number;
  /** Default DEFAULT_HTTP_IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number;
  /** Told of each connection closed for being over maxConnections. */
  connectionRefused?: () => void;
}

export class HttpServer {
  private server: Server | undefined;
  /** The event loop's last tick, in monotonic ms: a wall-clock step is no stall. */
  private lastTick = performance.now();
  private ticker: NodeJS.Timeout | undefined;
  private readonly metrics: MetricsPage;

  constructor(private readonly o: HttpServerOptions) {
    this.metrics = new MetricsPage(() => o.registry.metrics(), o.metricsMinIntervalMs ?? DEFAULT_METRICS_MIN_INTERVAL_MS, o.now);
  }

  async start(): Promise<number> {
    const { host, port } = splitHostPort(this.o.addr);
    this.ticker = setInterval(() => (this.lastTick = performance.now()), 1000);
    this.ticker.unref();
    const server = (this.server = createServer((req, res) => {
      void this.handle(req.url ?? '/', req.method ?? 'GET').then(
        ({ status, type, body }) => {
          // RFC 9110: a 405 says which methods the resource has.
          res.writeHead(status, status === 405 ? { 'content-type': type, allow: 'GET, HEAD' } : { 'content-type': type });
          res.end(body);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`internal error: ${(err as Error).message}\n`);
        },
      );
    }));
    server.maxConnections = this.o.maxConnections ?? DEFAULT_HTTP_MAX_CONNECTIONS;
    server.timeout = this.o.idleTimeoutMs ?? DEFAULT_HTTP_IDLE_TIMEOUT_MS;
    server.on('drop', () => this.o.connectionRefused?.());
    const perPeer = this.o.connectionsPerPeer ?? DEFAULT_HTTP_CONNECTIONS_PER_PEER;
    if (perPeer > 0) {
      const open = new Map<string, number>();
      server.on('connection', (socket) => {
        const peer = socket.remoteAddress ?? '';
        const n = open.get(peer) ?? 0;
        if (n >= perPeer) {
          socket.destroy();
          this.o.connectionRefused?.();
          return;
        }
        open.set(peer, n + 1);
        socket.once('close', () => {
          const left = (open.get(peer) ?? 1) - 1;
          if (left > 0) open.set(peer, left);
          else open.delete(peer);
        });
      });
    }
    await new Promise<void>((resolve, reject) => {
      // Named as the gRPC server's is: "listen EADDRNOTAVAIL … 10.99.99.99" did not say which setting.
      server.once('error', (err) => reject(new Error(`cannot listen for HTTP (http.addr) on ${this.o.addr}: ${err.message}`, { cause: err })));
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    clearInterval(this.ticker);
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(url: string, method: string): Promise<{ status: number; type: string; body: string }> {
    const path = url.split('?')[0];
    if (method !== 'GET' && method !== 'HEAD') return text(405, 'method not allowed');
    if (path === '/healthz' || path === '/livez') {
      const late = Math.round(performance.now() - this.lastTick);
      const limit = this.o.stallThresholdMs ?? 10_000;
      if (late > limit) return text(503, `event-loop: stalled for ${late} ms\n`);
      const h = this.o.probes.healthy?.() ?? { ok: true, failing: [] };
      return h.ok ? text(200, 'ok\n') : text(503, `unhealthy: ${h.failing.join(', ')}\n`);
    }
    if (path === '/readyz') {
      const r = this.o.probes.ready();
      return r.ok ? text(200, 'ok\n') : text(503, `not ready: ${r.failing.join(', ')}\n`);
    }
    if (path === '/metrics') {
      return { status: 200, type: this.o.registry.contentType, body: await this.metrics.get() };
    }
    return text(404, 'not found\n');
  }
}

function text(status: number, body: string): { status: number; type: string; body: string } {
  return { status, type: 'text/plain; charset=utf-8', body };
}
