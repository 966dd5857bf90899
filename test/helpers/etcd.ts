// A private etcd per test file: the Debian binary on free loopback ports, a temporary data
// directory, stopped (and the directory removed) when the test file ends, even on failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { ETCD_CHANNEL_OPTIONS } from '../../src/etcd/client.js';
import { EtcdWatchClient } from '../../src/etcd/watch-client.js';

export interface EtcdServer {
  readonly endpoint: string;
  readonly dataDir: string;
  /** A fresh client; closed by stop(). */
  client(): Etcd3;
  /** A fresh watch client (the project's own, as the informers use); closed by stop(). */
  watchClient(): EtcdWatchClient;
  /** Stop the process, keeping the data directory (for restart tests). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Start again on the same ports and data directory; `wipe`: with the directory emptied first,
   * as an etcd restored from an old backup or given a new volume comes back (its revision behind).
   * `prefill`: writes made first on a private client port, so that no client of the real port
   * sees etcd before they are all in (as a restored backup comes back with its content).
   */
  restart(o?: { wipe?: boolean; prefill?: (client: Etcd3) => Promise<void> }): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** A private etcd; `extraArgs` are given to it as they are (e.g. `--max-txn-ops 16`). */
export async function startEtcd(extraArgs: readonly string[] = []): Promise<EtcdServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sm-etcd-'));
  let clientPort = 0;
  let peerPort = 0;
  let proc: ChildProcess | undefined;
  const clients: { close(): void }[] = [];

  const launch = async (): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      if (clientPort === 0) {
        clientPort = await freePort();
        peerPort = await freePort();
      }
      const c = `http://127.0.0.1:${clientPort}`;
      const p = `http://127.0.0.1:${peerPort}`;
      const child = spawn(
        process.env.ETCD_BIN ?? 'etcd',
        [
          '--name', 't', '--data-dir', dataDir,
          '--listen-client-urls', c, '--advertise-client-urls', c,
          '--listen-peer-urls', p, '--initial-advertise-peer-urls', p,
          '--initial-cluster', `t=${p}`, '--logger=zap', '--log-level=error',
          ...extraArgs,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      live.add(child);
      child.on('exit', () => live.delete(child));
      if (await waitReady(c, child)) {
        proc = child;
        return;
      }
      child.kill('SIGKILL');
      // A port taken between probe and bind: pick new ports, unless this was a restart.
      if (attempt >= 3) throw new Error(`etcd did not start: ${stderr}`);
      clientPort = 0;
    }
  };

  await launch();
  const endpoint = `http://127.0.0.1:${clientPort}`;

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
    });
  };

  return {
    endpoint,
    dataDir,
    client() {
      const c = new Etcd3({ hosts: endpoint });
      clients.push(c);
      return c;
    },
    watchClient() {
      const c = new EtcdWatchClient({ endpoints: [endpoint], credentials: grpc.credentials.createInsecure(), channelOptions: ETCD_CHANNEL_OPTIONS });
      clients.push(c);
      return c;
    },
    kill,
    async restart(o) {
      await kill();
      if (o?.wipe) {
        rmSync(dataDir, { recursive: true, force: true });
        mkdirSync(dataDir, { mode: 0o700 });
      }
      const before = clientPort;
      if (o?.prefill) {
        clientPort = await freePort();
        await launch();
        const private_ = new Etcd3({ hosts: `http://127.0.0.1:${clientPort}` });
        try {
          await o.prefill(private_);
        } finally {
          private_.close();
          await kill();
        }
        clientPort = before;
      }
      await launch();
      if (clientPort !== before) throw new Error('etcd restarted on another port');
    },
    async stop() {
      for (const c of clients) c.close();
      await kill();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Whether etcd answers reads but has an alarm raised (a plain HTTP range through its gRPC gateway). */
async function alarmed(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/v3/maintenance/alarm`, { method: 'POST', body: JSON.stringify({ action: 'GET' }) });
    const body = (await res.json()) as { alarms?: unknown[] };
    return res.ok && Array.isArray(body.alarms) && body.alarms.length > 0;
  } catch {
    return false;
  }
}

async function waitReady(endpoint: string, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    try {
      const res = await fetch(`${endpoint}/health`);
      if (res.ok) return true;
      // etcd answers /health with 503 while an alarm is raised (it keeps alarms across a restart);
      // it serves then, and a test that raised the alarm restarts it on purpose.
      if (res.status === 503 && /alarm|"health":"false"/i.test(await res.text()) && (await alarmed(endpoint))) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
