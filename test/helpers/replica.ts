// statemanager as a separate process (the real entry point), for tests that kill it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './etcd.js';

export interface Replica {
  readonly identity: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly process: ChildProcess;
  readonly output: string[];
  get(path: string): Promise<{ status: number; body: string }>;
  metric(name: string, labels?: string): Promise<number | undefined>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export async function startReplica(opts: {
  identity: string;
  etcdEndpoint: string;
  acAddr: string;
  config?: Record<string, unknown>;
  env?: Record<string, string>;
  /** Serve gRPC on this port (e.g. the port of a replica this one replaces) instead of a free one. */
  grpcPort?: number;
}): Promise<Replica> {
  // A port freePort() found free can be taken again before the child binds it (by another test
  // file's process, or as the local end of an outgoing connection): start again on fresh ports,
  // or, for a port the caller fixed, on the same one a moment later.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts, await freePort(), opts.grpcPort ?? (await freePort()));
    } catch (err) {
      if (!(err instanceof AddressInUse) || attempt === 5) throw err;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

class AddressInUse extends Error {}

async function startOnce(
  opts: Parameters<typeof startReplica>[0],
  httpPort: number,
  grpcPort: number,
): Promise<Replica> {
  const dir = mkdtempSync(join(tmpdir(), 'sm-replica-'));
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, JSON.stringify({ log: { level: 'debug' }, ...opts.config }));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: {
      ...process.env,
      ETCD_ENDPOINTS: opts.etcdEndpoint,
      ACTION_CONTROLLER_ADDR: opts.acAddr,
      STATEMANAGER_HTTP_ADDR: `127.0.0.1:${httpPort}`,
      STATEMANAGER_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
      STATEMANAGER_CONFIG: configFile,
      POD_NAME: opts.identity,
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.on('exit', () => {
    live.delete(child);
    // The config file is read at start only; nothing else is written here.
    rmSync(dir, { recursive: true, force: true });
  });
  const output: string[] = [];
  const collect = (d: Buffer): void => {
    output.push(...d.toString().split('\n').filter((l) => l !== ''));
    if (output.length > 2000) output.splice(0, output.length - 2000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  const get = async (path: string, retried = false): Promise<{ status: number; body: string }> => {
    try {
      const res = await fetch(`http://127.0.0.1:${httpPort}${path}`);
      return { status: res.status, body: await res.text() };
    } catch (err) {
      // A kept-alive connection the server closed just as we reused it (its keep-alive timer
      // fired while its event loop was busy): a GET is safe to send again, once.
      const cause = String((err as { cause?: unknown }).cause ?? '');
      if (!retried && /other side closed|ECONNRESET/.test(cause)) return get(path, true);
      throw err;
    }
  };
  const replica: Replica = {
    identity: opts.identity,
    httpPort,
    grpcPort,
    process: child,
    output,
    get,
    async metric(name, labels = '') {
      const { body } = await get('/metrics');
      const line = body.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}}` : `${name} `) || (!labels && l.startsWith(`${name}{`)));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    },
    kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
      return new Promise((resolve) => {
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
      });
    },
  };
  // Wait until the HTTP server answers.
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      const message = `replica ${opts.identity} exited: ${output.slice(-20).join('\n')}`;
      throw output.some((l) => l.includes('EADDRINUSE')) ? new AddressInUse(message) : new Error(message);
    }
    try {
      await get('/healthz');
      return replica;
    } catch {
      if (Date.now() > deadline) throw new Error(`replica ${opts.identity} did not start: ${output.slice(-20).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
