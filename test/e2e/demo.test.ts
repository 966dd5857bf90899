// The README's first command, `npm run demo` (deploy/local/demo.sh), run for real: its etcd, the
// stand-in ActionController, statemanager, the simulated node agent and policy manager. Without
// the suite's build step (DEMO_NO_SETUP) and with a short script (DEMO_STEPS), so it ends alone.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;

interface DemoRun {
  code: number | null;
  output: string;
}

function runDemo(env: Record<string, string>, timeoutMs: number): Promise<DemoRun> {
  const dir = mkdtempSync(join(tmpdir(), 'sm-demo-'));
  return new Promise((resolve) => {
    const child = spawn('bash', ['deploy/local/demo.sh'], {
      cwd: root,
      env: { ...process.env, DEMO_NO_SETUP: '1', DEMO_DATA_DIR: join(dir, 'etcd'), DEMO_INTERVAL_MS: '250', DEMO_STEPS: '20', DEMO_OFFLOAD_AFTER_MS: '1500', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGINT'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, output });
    });
  });
}

/** A listener on 127.0.0.1:port that counts the connections it is given; undefined when the port is taken already. */
function occupy(port: number): Promise<{ server: Server; connections: () => number } | undefined> {
  let n = 0;
  const server = createServer((s) => {
    n++;
    s.destroy();
  });
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve({ server, connections: () => n }));
  });
}

test.serial('the demo shows states change, a failed package sent to the ActionController and an offloading, on another port when its default is taken', async (t) => {
  // Its default etcd port taken (by us, or by whatever holds it already): it must not talk to that.
  const squatter = await occupy(23791);
  try {
    const run = await runDemo({}, 60_000);
    t.is(run.code, 0, run.output);
    t.regex(run.output, /port 23791 is in use on 127\.0\.0\.1; using \d+/);
    // Created, or Running when the node agent's first change came before statemanager's first pass.
    t.regex(run.output, /state changed kind=model name=nav-map from=null to=(Created|Running)/);
    t.regex(run.output, /state changed kind=package name=navigation .*to=Error/);
    t.regex(run.output, /action-controller: Reconcile scenario=navigation-scenario/);
    t.regex(run.output, /offloading request identity=anonymous outcome=accepted model="nav-map"/);
    t.regex(run.output, /action-controller: OffloadModel model=nav-map edge-1 -> edge-2/);
    if (squatter) t.is(squatter.connections(), 0, 'the demo connected to the program holding its default port');
  } finally {
    squatter?.server.close();
  }
});

test.serial('a port set for the demo that is in use: a clear refusal, nothing started', async (t) => {
  const squatter = (await occupy(0))!;
  const port = (squatter.server.address() as { port: number }).port;
  try {
    const run = await runDemo({ DEMO_ETCD_PORT: String(port) }, 30_000);
    t.not(run.code, 0);
    t.regex(run.output, new RegExp(`DEMO_ETCD_PORT=${port}, but that port is in use on 127\\.0\\.0\\.1`));
    t.notRegex(run.output, /==> etcd on/);
    t.is(squatter.connections(), 0);
  } finally {
    squatter.server.close();
  }
});
