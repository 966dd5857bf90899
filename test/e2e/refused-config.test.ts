// A configuration refused at start ends the process with exit 2 and one line naming what is
// wrong, also when it is found only as the process reads its files (credential files): systemd's
// RestartPreventExitStatus=2 stops there instead of restarting it every 2 s (black-box probing:
// those ended with exit 1, an etcd CA with a bare ENOENT naming no setting).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { freePort } from '../helpers/etcd.js';

const dir = mkdtempSync(join(tmpdir(), 'sm-refused-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

async function run(config: object): Promise<{ code: number | null; stderr: string }> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, STATEMANAGER_CONFIG: file, ETCD_ENDPOINTS: `http://127.0.0.1:${await freePort()}`, STATEMANAGER_HTTP_ADDR: `127.0.0.1:${await freePort()}`, STATEMANAGER_GRPC_ADDR: `127.0.0.1:${await freePort()}` },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stderr };
}

for (const [what, config, message] of [
  ['a missing etcd CA file', { etcd: { tls: { caFile: '/nonexistent/ca.crt' } } }, /cannot read etcd\.tls\.caFile \/nonexistent\/ca\.crt: ENOENT/],
  ['a missing ActionController key', { actionController: { tls: { certFile: '/nonexistent/c.crt', keyFile: '/nonexistent/c.key' } } }, /cannot read actionController\.tls\.certFile/],
  ['a missing token file', { grpc: { auth: { tokens: [{ tokenFile: '/nonexistent/token', identity: 'x' }], rules: [] } } }, /cannot read token file \/nonexistent\/token/],
] as const) {
  test(`${what}: exit 2, one line naming it`, async (t) => {
    const r = await run(config);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, message);
  });
}
