// The harness side of the load generator: spawn it (a separate Node process), send commands,
// await results. Results carry typed arrays, so IPC uses structured-clone serialization.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { GeneratorCommand } from '../generator.js';
import type { FleetShape } from './fleet.js';
import { spawnTracked, stopChild } from './procs.js';

type Reply = { ok: true; result: unknown } | { ok: false; error: string };

export class GeneratorProcess {
  private child: ChildProcess | undefined;
  private waiting: ((r: Reply) => void) | undefined;
  private exited: string | undefined;

  constructor(
    private readonly root: string,
    private readonly endpoint: string,
    private readonly shape: FleetShape,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    // BENCH_GENERATOR_NICE: run the generator at a lower CPU priority (node agents normally
    // run on other machines; on this one they compete with etcd and statemanager).
    const nice = Number(process.env.BENCH_GENERATOR_NICE ?? '0');
    const argv = ['--import', 'tsx', join(this.root, 'test/bench/generator.ts')];
    const [cmd, args] = nice > 0 ? ['nice', ['-n', String(nice), process.execPath, ...argv]] : [process.execPath, argv];
    const child = spawnTracked(cmd, args, {
      cwd: this.root,
      env: { ...process.env, BENCH_ETCD: this.endpoint, BENCH_FLEET: JSON.stringify(this.shape) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    this.child = child;
    child.on('message', (m: Reply) => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.(m);
    });
    child.on('exit', (code, signal) => {
      this.exited = `generator exited with ${signal ?? code}`;
      const w = this.waiting;
      this.waiting = undefined;
      w?.({ ok: false, error: this.exited });
    });
    const hello = await this.next(30_000);
    if (!hello.ok) throw new Error(hello.error);
  }

  private next(timeoutMs: number): Promise<Reply> {
    return new Promise((resolve) => {
      if (this.exited) {
        resolve({ ok: false, error: this.exited });
        return;
      }
      const timer = setTimeout(() => {
        this.waiting = undefined;
        resolve({ ok: false, error: `generator did not answer within ${timeoutMs} ms` });
      }, timeoutMs);
      this.waiting = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
    });
  }

  async call<T>(cmd: GeneratorCommand, timeoutMs: number): Promise<T> {
    if (!this.child) throw new Error('generator not started');
    const reply = this.next(timeoutMs);
    this.child.send(cmd);
    const r = await reply;
    if (!r.ok) throw new Error(`generator ${cmd.cmd}: ${r.error}`);
    return r.result as T;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    try {
      child.send({ cmd: 'exit' } satisfies GeneratorCommand);
    } catch {
      // channel closed
    }
    await stopChild(child, 'SIGTERM', 3000);
  }
}
