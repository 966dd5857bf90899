// The real entry point, spawned: exit codes, one-line errors without stack traces, and a clean
// stop of `watch` on SIGTERM.
import { spawn } from 'node:child_process';
import test from 'ava';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { Script } from './_harness.js';

let etcd: EtcdServer;

test.before(async () => {
  etcd = await startEtcd();
});

test.after.always(async () => {
  await etcd?.stop();
});

interface Spawned {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run src/cli.ts; `onOutput` sees everything written so far after every chunk. */
function spawnCli(args: string[], env: NodeJS.ProcessEnv, onOutput?: (out: { stdout: string; stderr: string }, pid: number) => void): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onOutput?.({ stdout, stderr }, child.pid!);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onOutput?.({ stdout, stderr }, child.pid!);
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

test('spawned: a missing package exits 1 with one line; watch stops with exit 0 on SIGTERM', async (t) => {
  const s = new Script(etcd.client(), '/entry');
  await s.w.packageDef('shop', ['web']);
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: '/entry' };

  const missing = await spawnCli(['get', 'package', 'nope'], env);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'statemanager: package "nope" not found\n');
  t.is(missing.stdout, '');

  const ok = await spawnCli(['get', 'packages', '-o', 'json'], env);
  t.is(ok.code, 0, ok.stderr);
  t.like(JSON.parse(ok.stdout), [{ name: 'shop', state: null, defined: true }]);

  const usage = await spawnCli(['get', 'nodes'], env);
  t.is(usage.code, 2);
  t.notRegex(usage.stderr, /\n\s+at /); // no stack trace

  // Once it watches, record a transition; once it printed it, SIGTERM.
  let wrote = false;
  let signalled = false;
  const watched = await spawnCli(['watch', '--output', 'json'], env, (out, pid) => {
    if (!wrote && out.stderr.includes('watching transitions')) {
      wrote = true;
      void s.history('package', 'shop', null, 'Idle', new Date().toISOString(), 'new');
    }
    if (!signalled && out.stdout.includes('\n')) {
      signalled = true;
      process.kill(pid, 'SIGTERM');
    }
  });
  t.is(watched.code, 0, watched.stderr);
  t.like(JSON.parse(watched.stdout), { kind: 'package', name: 'shop', from: null, to: 'Idle' });
});
